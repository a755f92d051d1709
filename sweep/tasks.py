"""The task list of a sweep: one task per (dataset, seed), or per (dataset, shots, seed) for few-shot.

A task is the method's own scripts (``scripts/<method>/*.sh``) run in order, e.g. base-to-new training then its
evaluation. The scripts skip what is finished and resume what is partial, so running a task again is always
safe: that is what makes requeued Slurm tasks and restarted local sweeps correct. The same list feeds
``python -m sweep`` (local) and ``scripts/slurm/sweep.sh`` (one array task per list entry).

Protocols:

* ``base2new``: per dataset and seed, ``base2new_train.sh`` then ``base2new_test.sh`` (ZeroshotCLIP: the test);
* ``fewshot``: per dataset, shot count and seed, ``few_shot.sh``;
* ``xd`` (cross-dataset and domain generalisation): phase 0 trains on the source (``--source``, imagenet) per
  seed with ``xd_train.sh``; phase 1 evaluates every target of ``--datasets`` with ``xd_test.sh``. A phase starts
  when the previous one has ended (a Slurm dependency between the two arrays).
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("promptot", "ivlp", "promptsrc", "coop", "zsclip")
PROTOCOLS = ("base2new", "fewshot", "xd")
BENCHMARK = ["imagenet", "caltech101", "food101", "dtd", "ucf101", "oxford_flowers", "oxford_pets", "fgvc_aircraft",
             "stanford_cars", "sun397", "eurosat"]  # upstream sweep order
PROMPTOT_CFG = {"base2new": "vit_b16_c2_ep20_batch4_4+4ctx-Copy3",
                "xd": "vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets",
                "fewshot": "vit_b16_c2_ep50_batch4_4+4ctx_few_shot"}


class SweepError(ValueError):
    """A sweep that cannot be built (unknown method, protocol, dataset ...); the message says what to pass."""


@dataclass
class Task:
    phase: int
    name: str
    commands: List[List[str]]
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class Sweep:
    method: str
    protocol: str
    datasets: List[str]
    seeds: List[int]
    shots: List[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    source: str = "imagenet"
    div: str = "10.0"
    cfg: str = ""
    overrides: List[str] = field(default_factory=list)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SweepError(f"unknown method '{self.method}' (known: {', '.join(METHODS)})")
        if self.protocol not in PROTOCOLS:
            raise SweepError(f"unknown protocol '{self.protocol}' (known: {', '.join(PROTOCOLS)})")
        if len(self.overrides) % 2:
            raise SweepError(f"trailing config overrides must be KEY VALUE pairs, got: {' '.join(self.overrides)}")
        scripts = {"base2new": ["base2new_test"], "fewshot": ["few_shot"], "xd": ["xd_train", "xd_test"]}
        needed = scripts[self.protocol] + (["base2new_train"] if self.protocol == "base2new"
                                           and self.method != "zsclip" else [])
        missing = [s for s in needed if not os.path.isfile(self.script(s))]
        if missing or (self.method == "coop" and self.protocol == "fewshot"):
            raise SweepError(f"{self.method} has no {self.protocol} scripts for sweeps"
                             + (" (CoOp's few_shot.sh takes its own positionals: run it directly)"
                                if self.method == "coop" else f" (missing: {', '.join(missing)})"))
        configs = os.path.join(REPO, "configs", "datasets")
        for d in self.datasets + ([self.source] if self.protocol == "xd" else []):
            if not os.path.isfile(os.path.join(configs, f"{d}.yaml")):
                known = sorted(f[:-5] for f in os.listdir(configs) if f.endswith(".yaml"))
                raise SweepError(f"unknown dataset '{d}': no configs/datasets/{d}.yaml (known: {' '.join(known)})")
        self.cfg = self.cfg or PROMPTOT_CFG[self.protocol]

    def script(self, name):
        return os.path.join(REPO, "scripts", self.method, f"{name}.sh")

    def command(self, name, dataset, seed=None, shots=None):
        if self.method == "promptot":
            pos = {"xd_test": [dataset, seed, self.cfg, self.div],
                   "few_shot": [dataset, shots, self.div, self.cfg]}.get(name, [dataset, seed, self.div, self.cfg])
        else:
            pos = [dataset, shots] if name == "few_shot" else [dataset, seed]
        return ["bash", self.script(name), *map(str, pos), *self.overrides]

    def output_root(self, output=None):
        """The tree the scripts write and ``extract_log.py`` reads."""
        base = os.path.abspath(output) if output else REPO
        return os.path.join(base, "output" + (self.div if self.method == "promptot" else ""))

    def tasks(self) -> List[Task]:
        out = []
        if self.protocol == "base2new":
            for d in self.datasets:
                for s in self.seeds:
                    steps = [] if self.method == "zsclip" else [self.command("base2new_train", d, s)]
                    out.append(Task(0, f"{d} seed{s}", steps + [self.command("base2new_test", d, s)]))
        elif self.protocol == "fewshot":
            for d in self.datasets:
                for k in self.shots:
                    for s in self.seeds:
                        out.append(Task(0, f"{d} {k}-shot seed{s}", [self.command("few_shot", d, shots=k)],
                                        env={"SEEDS": str(s)}))
        else:
            for s in self.seeds:
                out.append(Task(0, f"{self.source} (source) seed{s}", [self.command("xd_train", self.source, s)]))
            for d in self.datasets:
                for s in self.seeds:
                    out.append(Task(1, f"{d} seed{s}", [self.command("xd_test", d, s)]))
        return out

    def phases(self):
        return sorted({t.phase for t in self.tasks()})

    def phase_tasks(self, phase):
        return [t for t in self.tasks() if t.phase == phase]
