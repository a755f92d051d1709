"""Write synthetic Dassl logs and output trees for the result-extraction tests.

The text follows Dassl.pytorch's log formats (``dassl/engine/trainer.py``, ``dassl/evaluation/evaluator.py``): startup block (arguments, config, dataset messages),
training lines (Dassl >= 0.6.1; the pre-June-2022 tab-separated form with ``old_format=True``), checkpoint lines,
``Finish training`` / ``Deploy the last-epoch model`` / ``Evaluate on the *test* set``, the 6-line ``=> result``
block (1 decimal, or 2 with ``decimals=2``) and ``Elapsed: H:MM:SS``; eval-only logs print
``Loading weights to <name> from "<path>" (epoch = <e>)`` before the test.
"""
import os
import os.path as osp

DATASET_NAMES = {
    "imagenet": "ImageNet", "caltech101": "Caltech101", "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars", "oxford_flowers": "OxfordFlowers", "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft", "sun397": "SUN397", "dtd": "DescribableTextures", "eurosat": "EuroSAT",
    "ucf101": "UCF101", "imagenetv2": "ImageNetV2", "imagenet_sketch": "ImageNetSketch",
    "imagenet_a": "ImageNetA", "imagenet_r": "ImageNetR",
}
TOTAL = 2000  # test-set size: every 1-decimal accuracy is an exact correct/total ratio


# ----------------------------------------------------------------------------------------------------------------
# Layouts (the project's scripts)

def b2n_dir(root, split, dataset, trainer, cfg, seed, shots=16):
    """``base2new/{train_base,test_base,test_new}/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>``."""
    return osp.join(root, "base2new", split, dataset, f"shots_{shots}", trainer, cfg, f"seed{seed}")


def fewshot_dir(root, dataset, trainer, cfg, seed, shots=16):
    """``<dataset>/<trainer>/<cfg>_<K>shots/seed<S>`` (few-shot and the ImageNet source of cross-dataset)."""
    return osp.join(root, dataset, trainer, f"{cfg}_{shots}shots", f"seed{seed}")


def xd_dir(root, dataset, trainer, cfg, seed, shots=16):
    """``evaluation/<trainer>/<cfg>_<K>shots/<dataset>/seed<S>`` (cross-dataset and DG targets)."""
    return osp.join(root, "evaluation", trainer, f"{cfg}_{shots}shots", dataset, f"seed{seed}")


def write_log(run_dir, text, name="log.txt"):
    """Write ``text`` as ``run_dir/name`` (``log.txt`` or ``log.txt-YYYY-mm-dd-HH-MM-SS``); return the path."""
    os.makedirs(run_dir, exist_ok=True)
    path = osp.join(run_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Log pieces

def startup(out_dir, trainer, dataset, subsample, max_epoch, eval_only=False, model_dir="", load_epoch=None):
    """Arguments / config / env / dataset / model-build lines printed before training or testing."""
    name = DATASET_NAMES.get(dataset, dataset)
    opts = ["DATASET.NUM_SHOTS", "16"] + (["DATASET.SUBSAMPLE_CLASSES", subsample] if subsample != "all" else [])
    lines = [
        "***************", "** Arguments **", "***************",
        "backbone: ", f"config_file: configs/trainers/{trainer}/cfg.yaml",
        f"dataset_config_file: configs/datasets/{dataset}.yaml", f"eval_only: {eval_only}", "head: ",
        f"load_epoch: {load_epoch}", f"model_dir: {model_dir}", "no_train: False", f"opts: {opts}",
        f"output_dir: {out_dir}", "resume: ", "root: ../imagedataset", "seed: 1", "source_domains: None",
        "target_domains: None", f"trainer: {trainer}", "transforms: None",
        "************", "** Config **", "************",
        "DATASET:", f"  NAME: {name}", "  NUM_SHOTS: 16", "  ROOT: ../imagedataset",
        f"  SUBSAMPLE_CLASSES: {subsample}",
        "OPTIM:", "  LR: 0.0025", f"  MAX_EPOCH: {max_epoch}", f"OUTPUT_DIR: {out_dir}",
        "Collecting env info ...", "** System info **", "PyTorch version: 2.4.0", "        Pillow (10.4.0)", "",
        f"Loading trainer: {trainer}", f"Loading dataset: {name}",
        f"Reading split from /data/{dataset}/split_zhou_{name}.json",
        f"Loading preprocessed few-shot data from /data/{dataset}/split_fewshot/shot_16-seed_1.pkl",
    ]
    if subsample != "all":
        lines.append(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    lines += [
        "Building transform_train", "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))",
        "+ random flip", "+ to torch tensor of range [0, 1]",
        "+ normalization (mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])",
        "Building transform_test", "+ resize the smaller edge to 224", "+ 224x224 center crop",
        "+ to torch tensor of range [0, 1]",
        "+ normalization (mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])",
        "---------  " + "-" * len(name), f"Dataset    {name}", "# classes  50", "# train_x  800",
        "# val      200", f"# test     {TOTAL:,}", "---------  " + "-" * len(name),
        "Loading CLIP (backbone: ViT-B/16)", "Building custom CLIP", 'Initial context: "a photo of a"',
        "Turning off gradients in both the image and the text encoder",
        "Parameters to be updated: {'prompt_learner.ctx'}", "Loading evaluator: Classification",
    ]
    return lines


def result_block(acc, decimals=1, total=TOTAL, extra=()):
    """``=> result`` + total / correct / accuracy / error / macro_f1 (+ ``extra`` lines)."""
    correct = round(acc * total / 100)
    return ["=> result", f"* total: {total:,}", f"* correct: {correct:,}", f"* accuracy: {acc:.{decimals}f}%",
            f"* error: {100 - acc:.{decimals}f}%", f"* macro_f1: {acc - 0.4:.{decimals}f}%", *extra]


def ood_block(rows, score="GL-MCM", temp=1000.0):
    """The project's OOD block (written by the SOT-GLP trainer's OOD evaluation); ``rows`` = [(set, fpr95, auroc), ...] incl. ``average``."""
    return [f"=> OOD result (ID: ImageNet, score: {score}, T: {temp})"] + [
        f"* {name}: FPR95 {fpr:.1f}% AUROC {auroc:.1f}%" for name, fpr, auroc in rows]


def train_line(epoch, max_epoch, batch, num_batches, old_format=False):
    """One training line: Dassl >= 0.6.1 (space-separated) or the old tab-separated form."""
    if old_format:
        return (f"epoch [{epoch}/{max_epoch}][{batch}/{num_batches}]\ttime 0.090 (0.120)\tdata 0.000 (0.015)\t"
                f"eta 0:01:05\tloss 1.2345 (1.3456)\tacc 56.2500 (50.0000)\tlr 2.000000e-03")
    return (f"epoch [{epoch}/{max_epoch}] batch [{batch}/{num_batches}] time 0.090 (0.120) data 0.000 (0.015) "
            f"loss 0.8123 (0.9001) lr 2.0000e-03 eta 0:01:05")


def train_log(acc, out_dir, trainer="PromptOT", dataset="dtd", subsample="base", max_epoch=40,
              model_name="VLPromptLearner", old_format=False, decimals=1, stop_after_epoch=None,
              resume_from=None, periodic_test=None, extra=(), ood=None):
    """A training log ending with the end-of-training test (accuracy ``acc``).

    ``stop_after_epoch``: the log ends after that epoch (a crashed / truncated run). ``resume_from``: the run resumed
    from that epoch. ``periodic_test``: {epoch: accuracy} of mid-training test blocks. ``ood``: OOD rows after the test.
    """
    lines = startup(out_dir, trainer, dataset, subsample, max_epoch)
    start = 0
    if resume_from:
        ckpt = osp.join(out_dir, model_name, f"model.pth.tar-{resume_from}")
        lines += [f"Found checkpoint at {out_dir} (will resume training)", f'Loading checkpoint from "{ckpt}"',
                  "Loaded model weights", "Loaded optimizer", "Loaded scheduler", f"Previous epoch: {resume_from}"]
        start = resume_from
    else:
        lines.append("No checkpoint found, train from scratch")
    lines.append(f"Initialize tensorboard (log_dir={out_dir}/tensorboard)")
    for epoch in range(start + 1, max_epoch + 1):
        lines += [train_line(epoch, max_epoch, b, 40, old_format) for b in (20, 40)]
        if old_format:
            lines.append(f'Checkpoint saved to "{out_dir}/{model_name}/model.pth.tar-{epoch}"')
        else:
            lines.append(f"Checkpoint saved to {out_dir}/{model_name}/model.pth.tar-{epoch}")
        if periodic_test and epoch in periodic_test:
            lines += ["Evaluate on the *test* set"] + result_block(periodic_test[epoch], decimals, extra=extra)
        if stop_after_epoch == epoch:
            return "\n".join(lines) + "\n"
    if old_format:
        lines += ["Finished training", "Deploy the last-epoch model", "Do evaluation on test set"]
    else:
        lines += ["Finish training", "Deploy the last-epoch model", "Evaluate on the *test* set"]
    lines += result_block(acc, decimals, extra=extra)
    if ood:
        lines += ood_block(ood)
    lines.append("Elapsed: 0:01:02")
    return "\n".join(lines) + "\n"


def eval_log(acc, out_dir, model_dir, epoch, trainer="PromptOT", dataset="dtd", subsample="new",
             model_name="VLPromptLearner", max_epoch=40, decimals=1, ood=None):
    """An eval-only log (``--eval-only --model-dir <model_dir> --load-epoch <epoch>``)."""
    ckpt = osp.join(model_dir, model_name, f"model.pth.tar-{epoch}")
    lines = startup(out_dir, trainer, dataset, subsample, max_epoch, eval_only=True, model_dir=model_dir,
                    load_epoch=epoch)
    lines += [f'Loading weights to {model_name} from "{ckpt}" (epoch = {epoch})', "Evaluate on the *test* set"]
    lines += result_block(acc, decimals)
    if ood:
        lines += ood_block(ood)
    return "\n".join(lines) + "\n"


def cut_before(text, marker):
    """``text`` truncated just before the first line starting with ``marker`` (a partially written log)."""
    lines = text.splitlines(keepends=True)
    idx = next(i for i, line in enumerate(lines) if line.startswith(marker))
    return "".join(lines[:idx])
