"""A/B of exploit runs on the same scenes: PSNR difference (paired bootstrap over scenes) and stage times."""
import json, sys
from latentscenes.evaluation.stats import paired_bootstrap, scene_values
ref = sys.argv[1]
def times(run):
    m = json.load(open(run + "/manifest.json"))
    st = m.get("stages") or {}
    return {k: round(v.get("train_s") or 0) for k, v in st.items() if isinstance(v, dict)}, round(m.get("latent_cache_s") or 0)
r = json.load(open(ref + ".metrics.json"))
print(f"{ref}: {r['overall']['mean']['psnr']:.2f}", times(ref))
for run in sys.argv[2:]:
    m = json.load(open(run + ".metrics.json"))
    b = paired_bootstrap(scene_values(m), scene_values(r))
    print(f"{run}: {m['overall']['mean']['psnr']:.2f}  minus ref {b['diff']:+.2f} [{b['lo']:+.2f}, {b['hi']:+.2f}]", times(run))
