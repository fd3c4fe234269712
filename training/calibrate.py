"""Choose how much of the class rebalancing to undo at inference, on validation photos.

    python -m training.calibrate --weights runs/default/best.weights.h5 \
        --prior runs/default/prior.npz --data ../shared/data/val \
        --out reports/calibration

Training with rebalanced weights w_q (docs/design.md 2.3) tilts the predicted bin
distribution towards rare, saturated colours, roughly by a factor w_q. Subtracting
alpha * log(w_q) from the logits undoes that tilt in part (alpha = 0: as trained,
alpha = 1: fully undone); it is a constant shift of the last layer's bias, so the chosen
alpha is folded into the exported weights (`training.export --prior-correction`).

For each alpha the photos are colorized from grey (logits computed once per photo) and
scored. With `--semantic` (KID and the judge's top-1 agreement measured) the choice
follows the project's decision rule (docs/overview.md): among the alphas whose top-1
agreement is within 2 points of grey's (or, when none is, those nearest to it), the one
with the lowest KID, then the lowest stain rate. Without it, the older choice: the best
PSNR among alphas whose colourfulness ratio to the originals stays at least
`--cf-min`, or else the one whose ratio comes nearest to it (colourfulness is no longer
a target: prefer `--semantic`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from core import metrics
from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.colorizer import Colorizer, compose
from core.colorspace import rgb_to_lab
from core.imageio import decode_rgb
from core.quantize import ANNEALED_T
from training.data import iter_encoded, list_sources
from training.evaluate import gray_baseline
from training.prior import load_prior
from training.realism import kernel_inception_distance
from training.semantic import SemanticJudge, agreement

__all__ = ["calibrate", "choose_alpha", "main"]

log = logging.getLogger(__name__)

CF_MIN = 0.8


def calibrate(
    colorizer: Colorizer,
    class_weights: np.ndarray,
    data: list[str],
    alphas: list[float],
    size: int = 256,
    limit: int = 0,
    temperature: float = ANNEALED_T,
    judge: SemanticJudge | None = None,
    saturation: float = 1.0,
) -> list[dict]:
    """Mean PSNR gain over grey, colourfulness ratio, AuC and stain rate per alpha.

    saturation: multiplies the decoded ab, as `Colorizer.colorize(saturation=...)`
    does (1: as decoded); another way to trade PSNR for colour than alpha.

    With a judge (training.semantic), each row also has the classifier's top-1 and
    top-5 agreement with the originals ("top1_agreement", "top5_agreement", fractions
    in [0, 1]) and the grey baseline's ("gray_top1_agreement", "gray_top5_agreement"),
    and the KID of the renderings against the originals on the judge's features
    ("kid", "kid_std"; paired, as `training.evaluate` computes it; "gray_kid").
    """
    log_w = np.log(np.maximum(class_weights, 1e-12)).astype(np.float32)
    scores: dict[float, list[tuple[float, ...]]] = {a: [] for a in alphas}
    agree: dict[float, list[tuple[bool, bool]]] = {a: [] for a in alphas}
    feats: dict[float, list[np.ndarray]] = {a: [] for a in alphas}
    gt_feats: list[np.ndarray] = []
    gray_feats: list[np.ndarray] = []
    gray_agree: list[tuple[bool, bool]] = []
    gray_psnr, cf_gt = [], []
    for n, (_key, data_bytes) in enumerate(iter_encoded(list_sources(data))):
        if limit and n >= limit:
            break
        gt = decode_rgb(data_bytes)
        gray = gray_baseline(gt)
        lab = rgb_to_lab(gray)
        logits = colorizer.predict_output(lab[..., 0], size)
        gray_psnr.append(metrics.psnr(gt, gray))
        cf_gt.append(metrics.colorfulness(gt))
        preds = []
        for a in alphas:
            ab = colorizer.output_to_chroma(logits - a * log_w, temperature)
            ab = ab * np.float32(saturation)
            pred = np.asarray(compose(lab, ab))
            preds.append(pred)
            cmf = metrics.ab_error_cmf(gt, pred)
            scores[a].append(
                (
                    metrics.psnr(gt, pred),
                    metrics.colorfulness(pred),
                    metrics.auc(cmf),
                    metrics.stain_rate(gt, pred),
                )
            )
        if judge is not None:
            top5, features = judge.top5_and_features([gt, gray, *preds])
            gt_top5, gray_top5, *rendered = top5
            gt_feats.append(features[0])
            gray_feats.append(features[1])
            gray_agree.append(agreement(gt_top5, gray_top5))
            for i, (a, pred_top5) in enumerate(zip(alphas, rendered, strict=True)):
                agree[a].append(agreement(gt_top5, pred_top5))
                feats[a].append(features[2 + i])
    if judge is not None:
        gray_top1, gray_top5 = np.mean(gray_agree, axis=0)
        gt_x = np.stack(gt_feats)
        gray_kid = kernel_inception_distance(gt_x, np.stack(gray_feats), paired=True)
    rows = []
    for a in alphas:
        s = np.array(scores[a])
        rows.append(
            {
                "alpha": a,
                "psnr_gain_over_gray": float(s[:, 0].mean() - np.mean(gray_psnr)),
                "cf_signed_ratio": float(s[:, 1].mean() / np.mean(cf_gt)),
                "auc": float(s[:, 2].mean()),
                "stain_rate": float(s[:, 3].mean()),
                "images": len(s),
            }
        )
        if judge is not None:
            top1, top5 = np.mean(agree[a], axis=0)
            kid, kid_std = kernel_inception_distance(
                gt_x, np.stack(feats[a]), paired=True
            )
            rows[-1].update(
                {
                    "top1_agreement": float(top1),
                    "top5_agreement": float(top5),
                    "gray_top1_agreement": float(gray_top1),
                    "gray_top5_agreement": float(gray_top5),
                    "kid": kid,
                    "kid_std": kid_std,
                    "gray_kid": gray_kid[0],
                }
            )
    return rows


TOP1_MARGIN = 0.02  # the decision rule: top-1 agreement within 2 points of grey's


def choose_alpha(rows: list[dict], cf_min: float = CF_MIN) -> float:
    """The alpha of `rows` (calibrate's) that the decision rule prefers
    (`choose_row`)."""
    return choose_row(rows, cf_min)["alpha"]


def choose_row(rows: list[dict], cf_min: float = CF_MIN) -> dict:
    """The row of `rows` (calibrate's) that the decision rule prefers.

    Rows with "kid" and "top1_agreement" (--semantic): among those within TOP1_MARGIN
    of grey's top-1 agreement, or else those with the highest agreement, the lowest
    KID, ties to the lowest stain rate. Other rows: the best PSNR among alphas keeping
    the colourfulness ratio >= cf_min, or else the ratio nearest to it.
    """
    if rows and all("kid" in r and "top1_agreement" in r for r in rows):
        floor = rows[0]["gray_top1_agreement"] - TOP1_MARGIN
        near = [r for r in rows if r["top1_agreement"] >= floor - 1e-9]
        if not near:
            best = max(r["top1_agreement"] for r in rows)
            near = [r for r in rows if r["top1_agreement"] == best]
        return min(near, key=lambda r: (r["kid"], r["stain_rate"]))
    inside = [r for r in rows if r["cf_signed_ratio"] >= cf_min]
    if inside:
        return max(inside, key=lambda r: r["psnr_gain_over_gray"])
    return min(rows, key=lambda r: abs(r["cf_signed_ratio"] - cf_min))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.calibrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--weights", required=True, help="weights file of a run")
    parser.add_argument("--prior", required=True, help="prior.npz of that run")
    parser.add_argument("--data", nargs="+", default=["../shared/data/val"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=0, help="first N photos (0: all)")
    parser.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=[0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6],
    )
    parser.add_argument(
        "--temperature", type=float, default=ANNEALED_T, help="annealed-mean T"
    )
    parser.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help="multiply the decoded ab by this (the app's saturation; 1: as decoded)",
    )
    parser.add_argument("--cf-min", type=float, default=CF_MIN)
    parser.add_argument(
        "--tta",
        action="store_true",
        help="average the output over the photo and its mirror image",
    )
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="also the top-1/top-5 agreement of the EfficientNet-Lite2 judge (slower)",
    )
    parser.add_argument("--out", default="", help="folder for calibration.json")
    return run_main(parser, argv, _run)


def _run(args: argparse.Namespace) -> int:
    colorizer = Colorizer.load(args.model, args.weights, tta=args.tta)
    weights = load_prior(args.prior)["weights"]
    rows = calibrate(
        colorizer,
        weights,
        args.data,
        args.alphas,
        args.size,
        args.limit,
        args.temperature,
        SemanticJudge() if args.semantic else None,
        args.saturation,
    )
    chosen = choose_alpha(rows, args.cf_min)
    print(
        "alpha  PSNR gain  CF ratio     AuC  stain %"
        + ("  top-1  KIDx1000" if args.semantic else "")
    )
    for r in rows:
        mark = "  <- chosen" if r["alpha"] == chosen else ""
        top1 = (
            f"  {100 * r['top1_agreement']:5.1f}  {1000 * r['kid']:8.2f}"
            if args.semantic
            else ""
        )
        print(
            f"{r['alpha']:5.2f}  {r['psnr_gain_over_gray']:+9.3f}  "
            f"{r['cf_signed_ratio']:8.3f}  {r['auc']:.4f}  "
            f"{100 * r['stain_rate']:7.2f}{top1}{mark}"
        )
    if args.semantic and rows:
        print(f"grey   top-1 {100 * rows[0]['gray_top1_agreement']:5.1f}")
    if args.out:
        record = {
            "command": "python -m training.calibrate " + " ".join(sys.argv[1:]),
            "data": args.data,
            "size": args.size,
            "rows": rows,
            "cf_min": args.cf_min,
            "tta": args.tta,
            "temperature": args.temperature,
            "saturation": args.saturation,
            "semantic": args.semantic,
            "chosen_alpha": chosen,
        }
        out = Path(args.out) / "calibration.json"
        atomic_write_bytes(out, json.dumps(record, indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
