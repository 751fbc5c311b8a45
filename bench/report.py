#!/usr/bin/env python3
"""bench/report.py: turns the raw measurements bench/run gathered into the table it prints and
the JSON it writes. Input: tab-separated lines
    row  group  case  role  unit  v1,v2,...  key=value;key=value
role: floor (what the row is a ratio to), subject (vfio-hook), compare (another tool), info.
unit: us (wall time samples, microseconds) or count.
usage: report.py RESULTS.tsv JSON-OUT [key=value ...]   (the key=values go into "meta")
"""
import json
import math
import statistics
import sys

TITLES = {
    "1": "Null path: vfio-hook as libvirt calls it for a VM without hostdevs",
    "2": "Holder scan: who holds the GPU's node, against open fds on the host",
    "3": "Parse: domain XML, time and peak RSS",
    "4": "Hand-over in the real-kernel guest: the GPU + audio pair to vfio-pci and back",
    "5": "VM cycle in the guest: virsh start + destroy",
}


def stats(values):
    v = sorted(values)
    n = len(v)
    q = lambda p: v[min(n - 1, int(p * n))]
    return {
        "n": n,
        "median": statistics.median(v),
        "mean": statistics.fmean(v),
        "min": v[0],
        "max": v[-1],
        "p10": q(0.10),
        "p90": q(0.90),
        "stddev": statistics.stdev(v) if n > 1 else 0.0,
    }


def fmt_time(us):
    if us >= 1e6:
        return "%.2f s" % (us / 1e6)
    if us >= 1e3:
        return "%.1f ms" % (us / 1e3)
    return "%.0f µs" % us


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            while len(parts) < 7:
                parts.append("")
            row, group, case, role, unit, values, extras = parts[:7]
            nums = [float(x) for x in values.split(",") if x != ""]
            extra = {}
            for kv in extras.split(";"):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    try:
                        extra[k] = float(v) if "." in v else int(v)
                    except ValueError:
                        extra[k] = v
            entry = {"row": row, "group": group, "case": case, "role": role, "unit": unit,
                     "samples": nums, "extra": extra}
            if nums:
                entry["stats"] = stats(nums)
            rows.append(entry)
    return rows


def groups_of(rows, row):
    out = {}
    for e in rows:
        if e["row"] == row:
            out.setdefault(e["group"], []).append(e)
    return out


def add_ratios(rows):
    for row in sorted({e["row"] for e in rows}):
        for group, entries in groups_of(rows, row).items():
            floors = [e for e in entries if e["role"] == "floor" and "stats" in e]
            if not floors:
                continue
            floor = floors[0]
            base = floor["stats"]["median"]
            for e in entries:
                if "stats" in e and e["unit"] == floor["unit"] and base > 0:
                    e["ratio"] = e["stats"]["median"] / base
                    e["ratio_to"] = floor["case"]
                    # Samples taken in the same round (the runner's, rows 4 and 5) pair up: the
                    # median of the per-round ratios is immune to drift between rounds.
                    if e is not floor and len(e["samples"]) == len(floor["samples"]) and all(floor["samples"]):
                        pairs = [a / b for a, b in zip(e["samples"], floor["samples"])]
                        e["paired_ratio_median"] = statistics.median(pairs)
                        e["rounds_faster_than_floor"] = sum(1 for r in pairs if r < 1)


def find(rows, row, group, role=None, case_prefix=None):
    for e in rows:
        if e["row"] != row or e["group"] != group:
            continue
        if role and e["role"] != role:
            continue
        if case_prefix and not e["case"].startswith(case_prefix):
            continue
        return e
    return None


def verdicts(rows):
    out = []

    def verdict(row, target, met, measured):
        out.append({"row": int(row), "target": target, "met": bool(met), "measured": measured})

    # 1: every hook event ≤ 1.1× the static empty binary, with and without hook.d
    for group, entries in groups_of(rows, "1").items():
        for e in entries:
            if e["role"] == "subject" and "ratio" in e:
                verdict("1", "%s [%s] ≤ 1.1× static empty" % (e["case"], group), e["ratio"] <= 1.1,
                        "%.2f×" % e["ratio"])
    # 2: linear in open fds; faster than fuser at every size
    scan = []
    for group, entries in groups_of(rows, "2").items():
        hook = next((e for e in entries if e["role"] == "subject"), None)
        fuser = next((e for e in entries if e["case"].startswith("fuser")), None)
        if hook and fuser and "stats" in hook and "stats" in fuser:
            verdict("2", "faster than fuser at %s" % group,
                    hook["stats"]["median"] < fuser["stats"]["median"],
                    "%s vs %s" % (fmt_time(hook["stats"]["median"]), fmt_time(fuser["stats"]["median"])))
        # the fit is over one kind of fd (/dev/null); the regular-file size is a contrast
        if hook and "fds" in hook["extra"] and "stats" in hook and hook["extra"].get("filler") != "regular-file":
            scan.append((hook["extra"]["fds"], hook["stats"]["median"], group))
    if len(scan) >= 3:
        # Linear: the cost of one more open fd is the same at every size. The slope between
        # neighbouring sizes (at least 2x apart in fds) varies by noise only; a quadratic scan
        # would make the last slope ~10x the first. Also the least-squares fit over all sizes.
        scan.sort()
        xs = [s[0] for s in scan]
        ys = [s[1] for s in scan]
        slopes = []
        last = scan[0]
        for point in scan[1:]:
            if point[0] >= 2 * last[0]:
                slopes.append((point[1] - last[1]) / (point[0] - last[0]))
                last = point
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        intercept = my - slope * mx
        ss_tot = sum((y - my) ** 2 for y in ys)
        ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys))
        r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
        spread = max(slopes) / min(slopes) if slopes and min(slopes) > 0 else float("inf")
        verdict("2", "linear in open fds (the cost of one more fd, size to size, varies < 2x)", spread <= 2,
                "%s µs per fd between sizes; fit: %.2f µs per fd + %s, R² = %.3f"
                % (", ".join("%.2f" % x for x in slopes), slope, fmt_time(intercept), r2))
    # 3: 10 KB under 1 ms; 20 MB under 1 s and 200 MB peak RSS
    small = find(rows, "3", "10 KB", case_prefix="parse_domain_xml")
    if small:
        verdict("3", "10 KB parse < 1 ms", small["stats"]["median"] < 1000, fmt_time(small["stats"]["median"]))
    big = find(rows, "3", "20 MB", case_prefix="parse_domain_xml")
    if big:
        verdict("3", "20 MB parse < 1 s", big["stats"]["median"] < 1e6, fmt_time(big["stats"]["median"]))
        rss = big["extra"].get("rss_peak_kb", 0)
        verdict("3", "20 MB parse peak RSS < 200 MB", rss < 200 * 1024, "%.0f MB" % (rss / 1024))
    # 4: prepare + release ≤ 1.1× the bare writes
    def paired(e):
        if "paired_ratio_median" not in e:
            return ""
        return "; per round: median ratio %.2f×, faster in %d of %d rounds" % (
            e["paired_ratio_median"], e["rounds_faster_than_floor"], e["stats"]["n"])

    hook = find(rows, "4", "prepare+release", role="subject")
    if hook and "ratio" in hook:
        verdict("4", "prepare + release ≤ 1.1× the bare sysfs writes (script)", hook["ratio"] <= 1.1,
                "%.2f×%s" % (hook["ratio"], paired(hook)))
    # 5: no slower than libvirt's own path
    hook = find(rows, "5", "cycle", role="subject")
    if hook and "ratio" in hook:
        verdict("5", "VM cycle no slower than managed='yes' without hook", hook["ratio"] <= 1.0,
                "%.2f× (median %s vs %s)%s" % (hook["ratio"], fmt_time(hook["stats"]["median"]),
                                               fmt_time(find(rows, "5", "cycle", role="floor")["stats"]["median"]),
                                               paired(hook)))
    return out


def table(rows):
    lines = []
    for row in sorted({e["row"] for e in rows}, key=int):
        lines.append("")
        lines.append("Row %s. %s" % (row, TITLES.get(row, "")))
        header = "  %-58s %6s %10s %21s %8s  %s" % ("case", "runs", "median", "p10 .. p90", "ratio", "notes")
        lines.append(header)
        for group, entries in groups_of(rows, row).items():
            lines.append("  [%s]" % group)
            for e in entries:
                if "stats" not in e:
                    continue
                s = e["stats"]
                notes = ", ".join("%s=%s" % (k, v) for k, v in e["extra"].items())
                if e["unit"] == "count":
                    lines.append("  %-58s %6d %10.0f %21s %8s  %s" % (e["case"][:58], s["n"], s["median"], "", "", notes))
                    continue
                ratio = "%.2f×" % e["ratio"] if "ratio" in e else ""
                if e["role"] == "floor":
                    ratio = "1 (floor)"
                spread = "%s .. %s" % (fmt_time(s["p10"]), fmt_time(s["p90"]))
                lines.append("  %-58s %6d %10s %21s %8s  %s" % (e["case"][:58], s["n"], fmt_time(s["median"]), spread, ratio, notes))
    return lines


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows = load(sys.argv[1])
    add_ratios(rows)
    meta = dict(kv.split("=", 1) for kv in sys.argv[3:] if "=" in kv)
    result = {"meta": meta, "results": rows, "targets": verdicts(rows)}
    with open(sys.argv[2], "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for line in table(rows):
        print(line)
    print("")
    print("Targets:")
    for v in result["targets"]:
        print("  %-6s row %d: %s: %s" % ("met" if v["met"] else "MISSED", v["row"], v["target"], v["measured"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
