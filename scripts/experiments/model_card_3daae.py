"""Write the MODEL_CARD.md of a pre-trained 3Da-AE folder from its manifest and the measured result files
(scripts/ship_3daae.sh step 4), so that no figure in the card is typed by hand.
Usage: python scripts/experiments/model_card_3daae.py PKG PLAIN.metrics.json OURS.metrics.json PROBE_PLAIN.json
       PROBE_OURS.json [NOTE.md] [--recipe OURS_RECIPE.metrics.json] [--rgb RGB.metrics.json]
NOTE.md: extra prose appended verbatim. --made-by SCRIPT: the script that makes the package (scripts/ship_3daae.sh).
--rgb: Tri-Planes (RGB) on the same scenes and views (`fit-rgb` + `eval`);
its row and OURS minus it are added. --recipe: the same scenes learned with the package's own exploit recipe when
PLAIN and OURS were measured with an earlier one (both with the same earlier recipe); its row and its difference to
OURS are added."""

import json
import sys
from pathlib import Path

from latentscenes.autoencoder.model import read_header
from latentscenes.evaluation.stats import paired_bootstrap, scene_values
from latentscenes.training import run_format as rf
from latentscenes.training.pipeline import shipped_name

args = sys.argv[1:]
def _option(name):
    if name not in args:
        return None
    i = args.index(name)
    value = Path(args[i + 1])
    del args[i : i + 2]
    return value


recipe_p, rgb_p, made_by = _option("--recipe"), _option("--rgb"), _option("--made-by")
pkg, plain_p, ours_p, probe_plain_p, probe_ours_p = (Path(a) for a in args[:5])
note = Path(args[5]).read_text() if len(args) > 5 else ""
man = json.loads((pkg / "manifest.json").read_text())
cfg = json.loads((pkg / "config.json").read_text())
plain, ours = json.loads(plain_p.read_text()), json.loads(ours_p.read_text())
pp, po = json.loads(probe_plain_p.read_text()), json.loads(probe_ours_p.read_text())


def mean(r, k="psnr"):
    return r["overall"]["mean"][k]


def probe(r):
    g = r["heldout"]["overall"]["mean"]
    return g["psnr"], g["ae_psnr"]


recipe = json.loads(recipe_p.read_text()) if recipe_p is not None else None
rgb = json.loads(rgb_p.read_text()) if rgb_p is not None else None
brgb = paired_bootstrap(scene_values(ours), scene_values(rgb)) if rgb is not None else None
# the --run name a user types: the shipped folder's name, else its path
name = shipped_name(pkg.resolve()) or str(pkg)
resampled_from = (man.get("notes") or {}).get("global_planes_resampled_from")
br = paired_bootstrap(scene_values(recipe), scene_values(ours)) if recipe is not None else None
b = paired_bootstrap(scene_values(ours), scene_values(plain))
bae = paired_bootstrap(scene_values(ours, "ae_psnr"), scene_values(plain, "ae_psnr"))
src = man["source"]
tri, j, ex = cfg["triplane"], cfg["joint"], cfg["exploit"]
views_per_scene = man["n_views"] // len(man["train_scene_ids"])


def view_updates(stage):
    """A stage's budget per scene in view-updates: its epochs over a scene's views (the exploit sizes stages so)."""
    if stage.get("epochs") is None:
        sys.exit("the package's exploit stages give steps, not epochs: their budget per scene depends on N_exploit")
    return round(stage["epochs"] * views_per_scene)


def finetune_loss(stage):
    """The exploit fine-tune's loss terms as the package's config sets them (Alg. 2: L_Dec; ours may add L_ae)."""
    terms = [name for name, key in (("L_Dec", "lambda_dec"), ("L_ae", "lambda_ae")) if stage.get(key, 0) > 0]
    return " + ".join(terms) + (" alone" if len(terms) == 1 else "")


(p_plain, ae_plain), (p_ours, ae_ours) = probe(pp), probe(po)
# the probe's own view offsets (``--set data.shift_grid``), which change what it measures (docs/fidelity.md)
probe_grid = int(po.get("config", {}).get("data", {}).get("shift_grid", 1))
# the latent size from the weights themselves (the config.json of packages exported before the seventeenth session
# kept a scratch architecture in its ae section)
channels = read_header(rf.shared_path(pkg))["vae_config"]["latent_channels"]
base_desc = (f"the base autoencoder `{rf.BASE_AE_REF}` (carried in this folder; {channels} latent channels; "
             "how it was made: below)" if rf.base_ae_path(pkg).is_file()
             else f"the shipped base autoencoder `{cfg['ae'].get('source') or 'shipped'}` ({channels} latent channels)")
# the threads the entry cost was measured at (manifest ``measured_on``; packages made before it: one)
threads = int((man.get("measured_on") or {}).get("torch_threads") or 1)
# the training resolution from the config (a RES=128 package learned its stages on 128x128 images)
res = int(cfg["data"].get("resolution") or 64)
down = 2 ** (len(read_header(rf.shared_path(pkg))["vae_config"]["down_block_types"]) - 1)  # AutoencoderKL
up = int(cfg["ae"].get("upscale") or 1)  # the exploit recipe's latent grid (`export --set ae.upscale`)
lines = [
    f"# Pre-trained 3Da-AE: FlightGear airliners, {res}x{res} images, {res // down}x{res // down}x{channels} latents",
    "",
    f"`latentscenes exploit --run {name} --data D --out OUT` learns new scenes in this 3D-aware latent space without",
    "a training run of your own (paper Alg. 2)" + ("; `latentscenes demo` (tiny-cpu) uses it" if name == "shipped" else "")
    + f". Its images are {res}x{res} (a dataset is loaded at that size). Made and measured by",
    f"`bash {made_by or 'scripts/ship_3daae.sh'}` (resumable); training your own stays `latentscenes train` + "
    "`latentscenes export`.",
    "",
    "## What it holds",
    "",
    f"- `model/shared.safetensors`: the autoencoder (diffusers AutoencoderKL, encoder + decoder), the tri-plane MLP "
    f"and the M = {tri['n_global']} global planes B (F_mac = {tri['f_mac']}, T = {tri['resolution']}"
    + (f", bilinearly resampled from the T = {resampled_from} they were trained at, so that new scenes are learned at "
       f"T = {tri['resolution']}: `latentscenes export --triplane-resolution {tri['resolution']}`" if resampled_from else "")
    + "), the latent background; `config.json`: the run's resolved `PipelineConfig` (sizes, render settings, exploit "
    "recipe).",
    f"- Trained from {base_desc} on the first {len(man['train_scene_ids'])} train-split scenes of "
    f"the built-in FlightGear airliners (24 views per scene, loaded at {res}x{res}; the exploit split's airframe "
    "meshes were never seen), with `--preset tiny-cpu`"
    + ("; " + " + ".join(f"{n:,} {k} steps" for k, n in src["stage_steps"].items()) if src.get("stage_steps") else "")
    + (f"; the joint stage used every view at {cfg['data']['shift_grid']}x{cfg['data']['shift_grid']} sub-latent-pixel "
       "offsets (`data.shift_grid`, docs/training.md)" if cfg["data"].get("shift_grid", 1) > 1 else "") + ".",
    f"- Taken from: stage `{src['stage']}`" + (f", step {src['step']}" if src.get("step") is not None else "")
    + f" of `{src['run']}`" + (f" (through `{src['derived_from']}`)" if src.get("derived_from") else "")
    + f". Joint stage (Alg. 1, Eq. 5): lambda_ae {j['lambda_ae']}, lambda_Enc {j['lambda_enc']}, "
    f"lambda_Dec {j['lambda_dec']}, lr encoder/decoder {j['lr_encoder']:g}/{j['lr_decoder']:g}, batch "
    f"{j['batch_size']} views.",
] + [
    f"- Then its decoder was replaced (`latentscenes export --ae`) by one trained further in `{r['source']}`"
    + (" (" + " + ".join(f"{n:,} {k} steps" for k, n in r["steps"].items() if n) + ")" if r.get("steps") else "")
    + (f": {r['train_s'] / 60:.1f} min, counted in the entry cost" if r.get("train_s") is not None else
       ": its training time is not recorded") + "."
    for k, r in (man.get("stages") or {}).items() if k.startswith("ae_replacement")
] + [
    f"- Entry cost (Eq. 9's one-off cost, paid once here): **{man['entry_cost_s'] / 60:.1f} min** of optimisation "
    f"and latent encoding on a 2-core CPU VM at {threads} thread{'s' if threads != 1 else ''}, sharing the machine "
    "with other jobs at times (an upper bound).",
    f"- Render conventions it was trained with: near {cfg['render']['near']}, far {cfg['render']['far']}, scene box "
    f"{cfg['render']['box_size']} (objects centred, cameras at distance ~2.3, OpenCV c2w). Scenes in other units "
    "must be rescaled to that box.",
    "",
    f"## Measured ({len(scene_values(ours))} new scenes of the exploit split, 8 held-out views each, {res}x{res})",
    "",
    "The two 3Da-AE rows learn the same new scenes with the same exploit recipe (the package's config: Encode-Scene "
    f"{view_updates(ex['fit'])} view-updates",
    f"per scene, decoder fine-tune {view_updates(ex['finetune'])} with {finetune_loss(ex['finetune'])}, new scenes' "
    f"tri-planes at T = {tri['resolution']}"
    + (f", views at data.shift_grid = {cfg['data']['shift_grid']}" if cfg["data"].get("shift_grid", 1) > 1 else "")
    + (f", latents on a grid {up}x as fine as the autoencoder's own (`ae.upscale = {up}`: {up * res // down}x"
       f"{up * res // down} latents, the images encoded at {up * res} px and decoded back to {res})" if up > 1 else "")
    + (", the autoencoder under bf16 autocast where the device computes bf16 natively (`ae.amp`; fp32 elsewhere)"
       if cfg["ae"].get("amp") else "")
    + "); *plain* uses the base autoencoder with the warm-up",
    "checkpoint's MLP and planes of the same run (no joint stage) = the plain-AE ablation.",
    "",
    "| autoencoder | held-out PSNR (dB) | SSIM | AE ceiling D(E(x)) after exploit | consistency probe (dB)"
    + (f", views at data.shift_grid = {probe_grid}" if probe_grid > 1 else "") + " | probe's AE ceiling |",
    "|---|---:|---:|---:|---:|---:|",
    f"| plain (base AE, warm-up only) | {mean(plain):.2f} | {mean(plain, 'ssim'):.3f} | {mean(plain, 'ae_psnr'):.2f} | "
    f"{p_plain:.2f} | {ae_plain:.2f} |",
    f"| **this 3Da-AE** | **{mean(ours):.2f}** | {mean(ours, 'ssim'):.3f} | {mean(ours, 'ae_psnr'):.2f} | "
    f"{p_ours:.2f} | {ae_ours:.2f} |",
] + ([] if rgb is None else [
    f"| Tri-Planes (RGB), the same scenes and views | {mean(rgb):.2f} | {mean(rgb, 'ssim'):.3f} | | | |",
]) + ([] if recipe_p is None else [
    f"| **this 3Da-AE, the package's exploit recipe** (decoder fine-tuned on the offset average, "
    f"`exploit.finetune.dec_offset_merge`) | **{mean(recipe):.2f}** | {mean(recipe, 'ssim'):.3f} | "
    f"{mean(recipe, 'ae_psnr'):.2f} | | |",
]) + [
    "",
    f"3Da-AE minus plain, held-out PSNR: **{b['diff']:+.2f} dB [{b['lo']:+.2f}, {b['hi']:+.2f}]** (95 % paired "
    f"bootstrap over the {len(scene_values(ours))} scenes); AE ceiling {bae['diff']:+.2f} dB [{bae['lo']:+.2f}, "
    f"{bae['hi']:+.2f}]. Consistency gap (AE ceiling minus probe): plain {ae_plain - p_plain:.2f} dB, this 3Da-AE "
    f"{ae_ours - p_ours:.2f} dB.",
] + ([] if rgb is None else [
    "",
    f"3Da-AE minus Tri-Planes (RGB), held-out PSNR: **{brgb['diff']:+.2f} dB [{brgb['lo']:+.2f}, {brgb['hi']:+.2f}]** "
    f"({brgb['n_scenes']} scenes).",
]) + ([] if recipe_p is None else [
    "",
    "The first two rows were measured with the exploit recipe before the decoder fine-tune on the offset average "
    f"(`dec_offset_merge` false); the package's recipe adds **{br['diff']:+.2f} dB [{br['lo']:+.2f}, "
    f"{br['hi']:+.2f}]** on the same scenes and views (ours minus ours, 95 % paired bootstrap) for ~3.6x the "
    "fine-tune step (each view's 4 offset renders decoded).",
]) + [
    "",
    "Result files: " + ", ".join("`" + str(p) + "`" for p in (plain_p, ours_p, probe_plain_p, probe_ours_p, recipe_p, rgb_p)
                                  if p is not None) + ".",
]
text = "\n".join(lines) + "\n" + (("\n" + note) if note else "")
(pkg / "MODEL_CARD.md").write_text(text)
print(text)
