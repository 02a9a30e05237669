"""task3: what the DeconvNet's latent channels carry.

From task2's checkpoint (trained on the fly when absent), take one training
and one test image and encode each (keeping the pooling switches). Then

* for each of the 6 channels of z1 (N, 6, 14, 14): zero every other channel
  and decode with the decoder's second half, ``decode_z1``;
* for each chosen channel of z2 (N, 16, 5, 5; ``--z2-channels 0 5 9`` or
  ``--all``): zero the others and decode with the full decoder,
  ``decode_z2`` then ``decode_z1``;

both with the switches from encoding that same image. Writes to OUT/task3/:
{train,test}_z1_channels.png, {train,test}_z2_channels.png (the original,
the all-channel reconstruction, one reconstruction per channel and the
channel's activation map), activation_stats.json (mean, std, max and
fraction non-zero per channel) and results.json.

    python -m experiments.task3 --checkpoint runs/task2/model.npz --z2-channels 0 5 9
    python -m minicnn.experiments.task3 ...     # anywhere, once minicnn is installed
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import minicnn as mc
from minicnn import viz
from minicnn.backend import array_module
from minicnn.train import load_model, write_json

from . import common, task2

Z2_DEFAULT = (0, 5, 9)


# --- the channel isolation (what the tests check) ------------------------------

def isolate(z, channel: int):
    """A copy of ``z`` (N, C, H, W) with every channel but ``channel`` set to zero."""
    xp = array_module(z)
    masked = xp.zeros_like(z)
    masked[:, channel] = z[:, channel]
    return masked


def from_z1_channel(model, z1, channel: int):
    """``(masked z1, decode_z1(masked z1))``; uses the switches of the model's last ``encode``."""
    masked = isolate(z1, channel)
    return masked, model.decode_z1(masked)


def from_z2_channel(model, z2, channel: int):
    """``(masked z2, decode_z1(decode_z2(masked z2)))``; uses the switches of the last ``encode``."""
    masked = isolate(z2, channel)
    return masked, model.decode_z1(model.decode_z2(masked))


def channel_stats(z) -> list[dict]:
    """Per channel of ``z`` (N, C, H, W), over images and positions: mean, std, max, fraction non-zero."""
    a = np.asarray(mc.to_numpy(z), dtype=np.float64)
    return [{"channel": c, "mean": float(a[:, c].mean()), "std": float(a[:, c].std()),
             "max": float(a[:, c].max()), "frac_nonzero": float((a[:, c] != 0).mean())}
            for c in range(a.shape[1])]


def stats_table(title: str, rows: list[dict]) -> str:
    lines = [title, f"{'channel':>7} {'mean':>9} {'std':>9} {'max':>9} {'nonzero':>8}"]
    lines += [f"{r['channel']:>7d} {r['mean']:>9.4f} {r['std']:>9.4f} {r['max']:>9.4f} {r['frac_nonzero']:>8.3f}"
              for r in rows]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------

def build_parser():
    p = common.base_parser(
        "task3", "Decode single latent channels of task2's DeconvNet. The training flags are used only "
                 "when the checkpoint is missing and task2 is run first.")
    task2.add_task2_arguments(p)
    g = p.add_argument_group("task3")
    g.add_argument("--checkpoint", type=Path, default=None, metavar="NPZ",
                   help="task2's weights (default: OUT/task2/model.npz; trained with the flags above if absent)")
    g.add_argument("--no-train", action="store_true", help="fail instead of training task2 when the checkpoint is absent")
    g.add_argument("--z2-channels", type=int, nargs="+", default=list(Z2_DEFAULT), metavar="C",
                   help="z2 channels (of 16) to decode one at a time")
    g.add_argument("--all", action="store_true", help="decode every z2 channel (overrides --z2-channels)")
    g.add_argument("--train-index", type=int, default=0, help="training-set image to use")
    g.add_argument("--test-index", type=int, default=0, help="test-set image to use")
    g.add_argument("--stats-images", type=int, default=1000, metavar="N",
                   help="also give channel statistics over the first N test images (0: skip)")
    g.add_argument("--stretch", action="store_true",
                   help="show each reconstruction min-max stretched instead of de-normalised and clipped")
    return p


def task2_argv(args) -> list[str]:
    """The flags that train task2 the way this task3 command asks."""
    argv = ["--backend", args.backend, "--out", str(args.out), "--seed", str(args.seed),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--momentum", str(args.momentum), "--lam", str(args.lam), "--log-every", str(args.log_every),
            "--eval-batch-size", str(args.eval_batch_size), "--checkpoint-every", str(args.checkpoint_every),
            "--val-size", str(args.val_size)]
    if args.data_dir:
        argv += ["--data-dir", str(args.data_dir)]
    if args.subset is not None:
        argv += ["--subset", str(args.subset)]
    if args.no_progress:
        argv.append("--no-progress")
    if args.resume:
        argv.append("--resume")
    return argv


def ensure_checkpoint(args) -> Path:
    default = task2.model_path(args.out)
    ckpt = Path(args.checkpoint) if args.checkpoint is not None else default
    if ckpt.exists():
        return ckpt
    if args.checkpoint is not None and ckpt.resolve() != default.resolve():
        raise SystemExit(f"error: no checkpoint at {ckpt} (task2 writes its weights to OUT/task2/model.npz; "
                         f"omit --checkpoint to train one there)")
    if args.no_train:
        raise SystemExit(f"error: no checkpoint at {ckpt} and --no-train was given; run "
                         f"`python -m {__package__}.task2 --out {args.out}` first")
    argv = task2_argv(args)
    print(f"[task3] No task2 checkpoint at {ckpt}: training task2 first with\n"
          f"    python -m {__package__}.task2 {' '.join(argv)}\n"
          f"  ({args.epochs} epoch(s) on {'all' if args.subset is None else f'{args.subset:g} of the'} data; "
          f"pass e.g. --epochs 1 --subset 0.1 for a quick model)")
    task2.main(argv)
    if not ckpt.exists():
        raise SystemExit(f"error: task2 finished but {ckpt} is missing")
    return ckpt


def decode_channels(model, x, z2_channels, mean, std, stretch: bool):
    """Everything one image's figures need: reconstructions and maps for z1's channels and the chosen z2 ones."""
    z1, z2 = model.encode(x)  # keeps this image's switches for the decoders below
    show = (lambda t: viz.stretch(viz.to_display(t, mean, std)[0])) if stretch else \
        (lambda t: viz.to_display(t, mean, std)[0])
    out = {"z1": z1, "z2": z2, "original": viz.to_display(x, mean, std)[0],
           "full_z1": show(model.decode_z1(z1)), "full_z2": show(model.decode_z1(model.decode_z2(z2)))}
    for name, z, fn, chans in (("z1", z1, from_z1_channel, range(z1.shape[1])),
                               ("z2", z2, from_z2_channel, z2_channels)):
        recons, maps = [], []
        for c in chans:
            _, xh = fn(model, z, c)
            recons.append(show(xh))
            maps.append(mc.to_numpy(z[0, c]))
        out[f"{name}_recons"], out[f"{name}_maps"] = recons, maps
    return out


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    ckpt = ensure_checkpoint(args)
    with common.run_folder(args, "task3") as out:
        return run(args, out, ckpt, started)


def run(args, out, ckpt: Path, started: float) -> dict:
    model = mc.models.DeconvNet()
    try:
        meta = load_model(ckpt, model)
    except (ValueError, KeyError) as e:  # minicnn.CheckpointError, or weights of another model
        raise SystemExit(f"error: cannot use {ckpt} as task2's DeconvNet weights: {e}") from None
    model.eval()
    mean = tuple(meta.get("normalize_mean", common.NORM_MEAN))
    std = tuple(meta.get("normalize_std", common.NORM_STD))
    print(f"loaded {ckpt} ({meta.get('model', 'DeconvNet')}, test accuracy "
          f"{meta.get('test_accuracy', float('nan')):.3f}, lambda {meta.get('lam', '?')})")

    n_z2 = model.conv2.out_channels
    z2_channels = list(range(n_z2)) if args.all else list(dict.fromkeys(args.z2_channels))
    bad = [c for c in z2_channels if not 0 <= c < n_z2]
    if bad:
        raise SystemExit(f"error: --z2-channels {bad} are outside 0..{n_z2 - 1}")

    train_ds, test_ds = common.load_cifar(args.data_dir)  # images are picked from the full sets
    classes = train_ds.classes
    results = {"task": "task3", "backend": args.backend, "seed": args.seed, "checkpoint": str(ckpt),
               "checkpoint_meta": meta, "settings": common.settings(args), "z2_channels": z2_channels,
               "images": {}, "figures": {}}
    stats = {}
    for split, ds, i in (("train", train_ds, args.train_index), ("test", test_ds, args.test_index)):
        if not 0 <= i < len(ds):
            raise SystemExit(f"error: --{split}-index {i} is outside 0..{len(ds) - 1}")
        name = classes[ds.labels[i]]
        x = common.normalized(ds.images[i:i + 1])
        d = decode_channels(model, x, z2_channels, mean, std, args.stretch)
        pred = classes[int(mc.to_numpy(model.classify(d["z2"]).argmax(axis=1))[0])]
        shown = " (each panel min-max stretched)" if args.stretch else ""
        f1 = viz.channel_reconstructions(
            d["original"], d["full_z1"], d["z1_recons"], d["z1_maps"],
            [f"z1 channel {c}" for c in range(len(d["z1_recons"]))], out / f"{split}_z1_channels.png",
            f"{split} image #{i} ({name}, predicted {pred}): decode_z1 of z1 with one channel kept{shown}")
        f2 = viz.channel_reconstructions(
            d["original"], d["full_z2"], d["z2_recons"], d["z2_maps"],
            [f"z2 channel {c}" for c in z2_channels], out / f"{split}_z2_channels.png",
            f"{split} image #{i} ({name}, predicted {pred}): decode_z2 + decode_z1 of z2 with one channel "
            f"kept{shown}")
        stats[split] = {"index": i, "class": name, "z1": channel_stats(d["z1"]), "z2": channel_stats(d["z2"])}
        results["images"][split] = {"index": i, "class": name, "predicted": pred}
        results["figures"][split] = {"z1": str(f1), "z2": str(f2)}
        print(stats_table(f"\n{split} image #{i} ({name}) -- z1 channels:", stats[split]["z1"]))
        print(stats_table(f"{split} image #{i} ({name}) -- z2 channels:", stats[split]["z2"]))

    n = min(args.stats_images, len(test_ds))
    if n > 0:
        z1s, z2s = [], []
        for lo in range(0, n, args.eval_batch_size):
            z1, z2 = model.encode(common.normalized(test_ds.images[lo:min(n, lo + args.eval_batch_size)]))
            z1s.append(mc.to_numpy(z1))
            z2s.append(mc.to_numpy(z2))
        stats["test_set"] = {"images": n, "z1": channel_stats(np.concatenate(z1s)),
                             "z2": channel_stats(np.concatenate(z2s))}
        print(stats_table(f"\nfirst {n} test images -- z1 channels:", stats["test_set"]["z1"]))
        print(stats_table(f"first {n} test images -- z2 channels:", stats["test_set"]["z2"]))
    write_json(out / "activation_stats.json", stats)
    results["activation_stats"] = stats
    results["total_wall_time_s"] = time.perf_counter() - started
    write_json(out / "results.json", results)
    print(f"\nfigures and statistics in {out}")
    return results


if __name__ == "__main__":
    main()
