"""The loss of models on a dataset's held-out pairs (train_on_accelerator.py's split: every 50th), so
that a shipped model and a training run's rounds compare on the same pairs; loads only those pairs.

    python benchmarks/held_out_loss.py DATA_DIR MODEL.keras [MODEL.keras ...]
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_on_accelerator as t  # noqa: E402


def main(argv: list[str]) -> None:
    from denoise.model import build_unet, compile_model
    from denoise.model_io import read_keras_model, read_model_info

    data = Path(argv[0])
    settings = t.load_dataset_settings(data)
    xs, ys, offset = [], [], 0
    for path in t.list_shards(data):
        with np.load(path) as d:
            noisy, clean = d["noisy_db"], d["clean_db"]
        keep = t.is_validation(np.arange(offset, offset + len(noisy)), 50)
        offset += len(noisy)
        noisy, clean = noisy[keep].astype(np.float32), clean[keep].astype(np.float32)
        x = t.scale_input(noisy, settings)[..., None]
        xs.append(x)
        ys.append(np.concatenate([t.scale_target(t.noise_target_db(noisy, clean), settings)[..., None], x], -1))
    xv, yv = np.concatenate(xs).astype(np.float16), np.concatenate(ys).astype(np.float16)
    for weights in argv[1:]:
        _, model_settings, _ = read_model_info(Path(weights))
        model = build_unet(settings, model_settings)
        model.set_weights([w.astype("float32") for w in read_keras_model(Path(weights)).get_weights()])
        compile_model(model, 1e-5, "noise+clean", settings)
        print(f"{weights}: {len(xv)} pairs, loss {model.evaluate(xv, yv, batch_size=128, verbose=0):.5f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
