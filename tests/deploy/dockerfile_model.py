#!/usr/bin/env python3
"""deploy/Dockerfile as the checks see it: its stages, what each image
installs, copies, runs and as whom; and .dockerignore's rules."""

import fnmatch
import os
import re

import yaml

# Targets that ship someone else's program, built from Debian's packages so
# compose needs no registry: target -> the program its ENTRYPOINT runs. They
# are not Conveyor binaries (no --help of ours, no shared-library check).
THIRD_PARTY_IMAGES = {"redis": "redis-server", "redis-tunnel": "stunnel"}


class Dockerfile:
    """The parts of deploy/Dockerfile the checks need."""

    def __init__(self, file_path):
        with open(file_path, encoding="utf-8") as f:
            text = f.read()
        # Join continuation lines, drop comments.
        logical, current = [], ""
        for raw in text.splitlines():
            if not current and raw.lstrip().startswith("#"):
                continue
            if raw.rstrip().endswith("\\"):
                current += raw.rstrip()[:-1] + " "
                continue
            current += raw
            if current.strip():
                logical.append(current.strip())
            current = ""
        self.args = {}
        self.stages = {}  # name -> dict(base, instructions)
        self.order = []
        stage = None
        for line in logical:
            keyword, _, rest = line.partition(" ")
            keyword = keyword.upper()
            rest = rest.strip()
            if keyword == "ARG" and stage is None:
                name, _, default = rest.partition("=")
                self.args[name] = default
            elif keyword == "FROM":
                match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
                base = re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m.group(1), ""),
                              match.group(1))
                stage = match.group(2) or f"stage{len(self.order)}"
                self.stages[stage] = {"base": base, "instructions": []}
                self.order.append(stage)
            elif stage is not None:
                self.stages[stage]["instructions"].append((keyword, rest))

    def chain(self, stage):
        """`stage` and the stages it is built FROM, nearest first."""
        result = []
        while stage in self.stages:
            result.append(stage)
            stage = self.stages[stage]["base"]
        return result

    def instructions(self, stage, keyword):
        return [rest for kw, rest in self.stages[stage]["instructions"] if kw == keyword]

    def inherited(self, stage, keyword):
        out = []
        for name in reversed(self.chain(stage)):
            out.extend(self.instructions(name, keyword))
        return out

    def apt_packages(self, stage):
        packages = set()
        for run in self.inherited(stage, "RUN"):
            for match in re.finditer(r"apt-get install((?:\s+[^&;|]+))", run):
                packages.update(t for t in match.group(1).split() if not t.startswith("-"))
        return packages

    def entrypoint(self, stage):
        for name in self.chain(stage):
            found = self.instructions(name, "ENTRYPOINT")
            if found:
                return yaml.safe_load(found[-1])  # exec form is a JSON/YAML list
        return None

    def env(self, stage):
        env = {}
        for rest in self.inherited(stage, "ENV"):
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
        return env

    def user(self, stage):
        for name in self.chain(stage):
            found = self.instructions(name, "USER")
            if found:
                return found[-1]
        return None


def runtime_images(dockerfile):
    """Runtime stage name -> binary it runs (stages with an ENTRYPOINT)."""
    images = {}
    for stage in dockerfile.order:
        if stage == "builder":
            continue
        entrypoint = dockerfile.entrypoint(stage)
        if entrypoint and dockerfile.instructions(stage, "ENTRYPOINT"):
            images[stage] = os.path.basename(entrypoint[0])
    return images


def listen_port(argv):
    """Port of the --listen flag in an argv list, or None."""
    for i, arg in enumerate(argv):
        value = None
        if arg == "--listen" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--listen="):
            value = arg.split("=", 1)[1]
        if value is not None:
            return int(value.rsplit(":", 1)[1])
    return None


def dockerignore_allows(patterns, rel_path):
    """Docker's .dockerignore semantics, enough for plain and `!` patterns."""
    parts = rel_path.strip("/").split("/")
    allowed = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        # A pattern matches a path or any of its parent directories.
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:depth]), pat):
                allowed = negate
                break
    return allowed



def conveyor_images(dockerfile):
    """Runtime targets that run a Conveyor binary: stage -> binary."""
    return {stage: binary for stage, binary in runtime_images(dockerfile).items()
            if stage not in THIRD_PARTY_IMAGES}


def image_stage(image):
    """'conveyor/resize:latest' -> 'resize' (the Dockerfile target it names)."""
    match = re.match(r"^(?:[\w.-]+/)*conveyor/([a-z0-9-]+)(?::[\w.-]+)?$", image)
    return match.group(1) if match else None
