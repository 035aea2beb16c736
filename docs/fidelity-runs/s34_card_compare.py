# Thirty-fourth session: the shipped-128 candidate (the s33 cpu-128 benchmark) against the previous shipped-128 (the s27
# benchmark) and Tri-Planes (RGB) per scene, paired bootstrap over scenes. Run from the repository root (reads the two committed benchmarks).
import json
from latentscenes.evaluation.stats import paired_bootstrap
r=json.load(open("docs/bench-cpu-128-s33/results.json"))
ev=r["evaluations"]
old=json.load(open("docs/bench-cpu-128-s27/results.json"))["evaluations"]
def sv(e, group="exploit", k="psnr"):
    return {s:v["mean"][k] for s,v in e["scenes"].items() if v["group"]==group}
new, rgb, plain, prev = sv(ev["ours"]), sv(ev["rgb"]), sv(ev["plain-ae"]), sv(old["ours"])
prgb=sv(old["rgb"])
print(f"same exploit scenes in both: {sorted(new) == sorted(prev)}; the s27 benchmark fitted RGB on {len(prgb)} of them; its fits equal the s33 ones on those: {all(abs(prgb[s] - rgb[s]) < 1e-9 for s in prgb)}")
for s in sorted(new): print(f"{s:24s} new {new[s]:.2f} prev {prev[s]:.2f} rgb {rgb[s]:.2f} rgb27 {prgb.get(s,float('nan')):.2f} plain {plain[s]:.2f}")
f=lambda b: f"{b['diff']:+.2f} [{b['lo']:+.2f}, {b['hi']:+.2f}] n={b['n_scenes']}"
print("new-prev", f(paired_bootstrap(new, prev)))
print("prev-rgb(s33)", f(paired_bootstrap(prev, rgb)))
unseen=["767-Arkefly","A319-AirIndia","A319-Avianca","A321-Saudia"]
g=lambda d: {s:d[s] for s in unseen}
print("unseen new-rgb", f(paired_bootstrap(g(new),g(rgb))))
print("unseen prev-rgb", f(paired_bootstrap(g(prev),g(rgb))))
print("unseen new-plain", f(paired_bootstrap(g(new),g(plain))))
print("unseen new-prev", f(paired_bootstrap(g(new),g(prev))))
