"""``greentrack estimate-fl``: energy and CO2e of a planned federated run, by part."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from greentrack.cli.values import integer, number
from greentrack.numbers import ENERGY, MASS, column, num, quantity_range


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "estimate-fl",
        help="energy and CO2e of a planned federated run: client compute, upload, "
        "download, server (from assumptions or a short measured run)",
        description="Predict a federated run by part. Per-unit costs come from --calibrate "
        "RUN_DIR (a short run of the same task recorded by EmissionsStrategy) or from "
        "--client-power-w, --seconds-per-epoch and --model-bytes.",
    )
    p.add_argument(
        "--rounds",
        type=integer("rounds", 1, 10_000_000),
        required=True,
        help="server rounds of the planned run (>= 1)",
    )
    p.add_argument(
        "--clients-per-round",
        type=integer("clients", 1, 10_000_000),
        required=True,
        help="clients sampled in each round (>= 1)",
    )
    p.add_argument(
        "--local-epochs",
        type=number("epochs", 0, 10_000, low_open=True),
        required=True,
        help="local epochs each client trains (above 0)",
    )
    p.add_argument(
        "--samples-per-client",
        type=number("samples", 0, 1e12, low_open=True),
        required=True,
        help="training samples per client (above 0)",
    )
    p.add_argument("--no-evaluate", action="store_true", help="clients do not evaluate")
    p.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="the server run directory of a short run of the same task (written by the Flower "
        "EmissionsStrategy, with energy_mod on the clients): per-unit costs are measured there",
    )
    p.add_argument(
        "--calibration-local-epochs",
        type=number("epochs", 0, 10_000, low_open=True),
        default=None,
        help="local epochs of the calibration run (default: --local-epochs)",
    )
    p.add_argument(
        "--client-power-w",
        type=number("W", 0, 5000, low_open=True),
        default=None,
        help="a client's power while training, W (above 0 up to 5,000)",
    )
    p.add_argument(
        "--device-profile",
        default=None,
        help="client power from a bundled device profile (e.g. phone-oneplus7pro)",
    )
    p.add_argument(
        "--seconds-per-epoch",
        type=number("s", 0, 1e7, low_open=True),
        default=None,
        help="seconds per local epoch, per client (above 0)",
    )
    p.add_argument(
        "--eval-seconds",
        type=number("s", 0, 1e7),
        default=0.0,
        help="seconds of evaluation per client and round (>= 0)",
    )
    p.add_argument(
        "--model-bytes",
        type=number("bytes", 0, 1e13, low_open=True),
        default=None,
        help="bytes of the model sent each way (above 0)",
    )
    p.add_argument(
        "--server-j-per-client-round",
        type=number("J", 0, 1e9),
        default=0.0,
        help="server energy per client and round (J)",
    )
    p.add_argument(
        "--network", type=_network, default=None, help="kWh/GB key or number (both directions)"
    )
    p.add_argument(
        "--upload-network", type=_network, default=None, help="kWh/GB key or number for uploads"
    )
    p.add_argument(
        "--download-network",
        type=_network,
        default=None,
        help="kWh/GB key or number for downloads",
    )
    p.add_argument("--region", default=None, help="the server's grid (and the clients')")
    p.add_argument(
        "--pue", type=number("", 1, 5), default=1.0, help="the server's PUE, 1 to 5 (default 1)"
    )
    p.add_argument(
        "--client-regions",
        default=None,
        help="clients' grid mix as REGION=SHARE,... e.g. US=0.5,IN=0.3,DE=0.2",
    )
    p.add_argument("--sensitivity", action="store_true", help="also show the levers")
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )


def _network(text: str) -> str:
    """``--network`` and its directions: a bundled coefficient's key, or kWh per GB above 0
    and below 10, checked here so that the error names the option."""
    from greentrack.carbon.network import coefficients

    if text in coefficients():
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 10):
        raise argparse.ArgumentTypeError(
            "takes kWh per GB above 0 and below 10, or a bundled key "
            f"({', '.join(coefficients())}); got {text!r}"
        )
    return text


def _number_or_key(value: str | None) -> str | float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _shares(text: str | None) -> dict[str, float] | None:
    """``US=0.5,IN=0.3,DE=0.2``: regions and the share of the clients in each, shares above 0
    that add up to 1."""
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        key, _, share = part.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = math.nan
        if not key.strip() or not (math.isfinite(value) and 0 < value <= 1) or key in out:
            raise ValueError(
                "--client-regions takes REGION=SHARE pairs, each region once with a share above "
                f"0 up to 1, like US=0.5,IN=0.5; got {part!r}"
            )
        out[key.strip()] = value
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise ValueError(
            f"--client-regions: the shares add up to {num(sum(out.values()), 6)}, not 1 (every "
            f"client is in one region); got {text!r}"
        )
    return out


def cmd_estimate_fl(args: argparse.Namespace) -> int:
    from greentrack.analysis import fl_estimate as fe
    from greentrack.errors import GreentrackError
    from greentrack.rundir.reader import load_run

    try:
        setup = fe.FlSetup(
            args.rounds,
            args.clients_per_round,
            args.local_epochs,
            args.samples_per_client,
            evaluate=not args.no_evaluate,
        )
        if args.calibrate is not None:
            if not (args.calibrate / "meta.json").exists():
                raise ValueError(
                    f"--calibrate {args.calibrate}: not a run directory. A calibration run is a "
                    "short run of the same task whose server used greentrack's EmissionsStrategy "
                    "(clients with energy_mod); pass its run directory"
                )
            units = fe.calibrate(
                load_run(args.calibrate),
                local_epochs=args.calibration_local_epochs or args.local_epochs,
            )
        else:
            if args.device_profile is not None and args.client_power_w is None:
                from greentrack.meters.profiles import profile

                args.client_power_w = profile(args.device_profile).compute_w
            missing = [
                f"--{n.replace('_', '-')}"
                for n in ("client_power_w", "seconds_per_epoch", "model_bytes")
                if getattr(args, n) is None
            ]
            if missing:
                raise ValueError(
                    f"give --calibrate RUN_DIR, or {', '.join(missing)} for the assumptions"
                )
            units = fe.units_from_assumptions(
                client_power_w=args.client_power_w,
                seconds_per_epoch=args.seconds_per_epoch,
                samples_per_client=args.samples_per_client,
                model_bytes=args.model_bytes,
                eval_seconds=args.eval_seconds,
                server_j_per_client_round=args.server_j_per_client_round,
            )
        kwargs: dict[str, Any] = {
            "region": args.region,
            "pue": args.pue,
            "client_regions": _shares(args.client_regions),
        }
        result = fe.estimate_fl(
            setup,
            units,
            network=_number_or_key(args.network),
            upload_network=_number_or_key(args.upload_network),
            download_network=_number_or_key(args.download_network),
            **kwargs,
        )
        rows = fe.sensitivity_fl(result) if args.sensitivity else []
    except (GreentrackError, ValueError, OSError) as e:
        print(f"greentrack: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        out = result.to_dict()
        if rows:
            out["sensitivity"] = [r.__dict__ for r in rows]
        print(json.dumps(out, indent=2))
        return 0
    # each figure with its range, rounded outward, in the unit that reads best
    energy = quantity_range(result.total_kwh, result.low_kwh, result.high_kwh, ENERGY)
    co2 = ""
    if result.co2e_g is not None:
        mass = quantity_range(result.co2e_g, result.co2e_low_g, result.co2e_high_g, MASS)
        co2 = f", {mass} CO2e"
    print(f"federated estimate (not a measurement): {energy}{co2}")
    shares = result.shares()
    parts = column(result.parts_kwh.values(), ENERGY)  # a table: one unit for the column
    for part, kwh in result.parts_kwh.items():
        print(f"  {part.replace('_', ' '):<15} {parts.text(kwh):>14}  {shares[part]:6.1%}")
    for a in result.assumptions:
        print(f"  assumption: {a}")
    if rows:
        print("  sensitivity:")
        energy_col = column([r.energy_kwh for r in rows], ENERGY)
        mass_col = column([r.co2e_g for r in rows], MASS)
        for r in rows:
            c = f"{mass_col.text(r.co2e_g)} CO2e" if r.co2e_g is not None else ""
            print(
                f"    {r.lever:<14} {r.setting:<46} {energy_col.text(r.energy_kwh):>12} {c:>16} "
                f"x{r.factor_vs_base:.2f}"
            )
    return 0
