#!/usr/bin/env python3
"""Shared by the deploy/ checks (tests/deploy/*_test.py): where the tree and
the binaries are, what each binary's `--help` says it accepts, the Debian
packages a binary links, and the runner every check file uses.

Everything a Dockerfile, compose file or Kubernetes manifest says about a
binary is checked against that binary's real `--help` output: the binary must
exist (as a CMake add_executable and as a built file in --bin-dir), every
CONVEYOR_* variable and every flag the artefacts set must be one it accepts,
every probe / Service / health check must point at the port the container
listens on, every path the images are built from must exist, and every shared
library a binary links must be installed in its runtime image.

Run by ctest (tests/deploy/CMakeLists.txt), one file per subject:
  <subject>_test.py --source-dir <repo> --bin-dir <build>/bin
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, not a test result
    print("tests/deploy: python3-yaml is missing (tools/setup.sh installs it)", file=sys.stderr)
    sys.exit(1)

SOURCE_DIR = ""  # set by main()
BIN_DIR = ""

# The slim runtime base already has these (Essential / apt's own dependencies).
SLIM_BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5",
                      "libbz2-1.0", "libcrypt1"}
# Images whose binary links OpenCV; the issue wants it nowhere else.
OPENCV_IMAGES = {"resize", "filter"}
STAGES = ["download", "resize", "filter", "upload", "webhook"]
# A step's default deadline (chain.proto Step.timeout: "0 means 30 s").
DEFAULT_STEP_TIMEOUT_S = 30
K8S_NAMESPACE = "conveyor"


def path(*parts):
    return os.path.join(SOURCE_DIR, *parts)


def load_yaml_documents(file_path):
    with open(file_path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def parse_duration_s(text):
    """'45s', '1m30s', '250ms', '2h' -> seconds (float)."""
    text = str(text).strip()
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total, pos = 0.0, 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        if match.start() != pos:
            raise ValueError(f"bad duration {text!r}")
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"bad duration {text!r}")
    return total


# ----------------------------------------------------------------- binaries --

class BinaryHelp:
    """What `<binary> [subcommand] --help` says the binary accepts."""

    _cache = {}

    def __init__(self, binary, subcommand=None):
        self.binary = binary
        exe = os.path.join(BIN_DIR, binary)
        if not os.access(exe, os.X_OK):
            raise AssertionError(
                f"{exe} does not exist: build it (ninja -C <build> {binary}) before this test")
        argv = [exe] + ([subcommand] if subcommand else []) + ["--help"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
        self.text = result.stdout
        self.flags = set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", self.text))
        self.envs = set(re.findall(r"\b(CONVEYOR_[A-Z0-9_]+|AWS_[A-Z0-9_]+)\b", self.text))
        # CLI11 lists subcommands under "SUBCOMMANDS:" as "  name   description".
        self.subcommands = set()
        in_subcommands = False
        for line in self.text.splitlines():
            if line.strip().upper().startswith("SUBCOMMANDS"):
                in_subcommands = True
                continue
            if in_subcommands:
                match = re.match(r"^\s+([a-z][a-z0-9-]*)\b", line)
                if match:
                    self.subcommands.add(match.group(1))
                elif line.strip() and not line.startswith(" "):
                    in_subcommands = False

    def default(self, flag):
        """The integer default --help shows for `flag` ("--max-queued INT:...=16")."""
        match = re.search(re.escape(flag) + r" [^\n]*?=(\d+)(?:\s|$)", self.text)
        if match is None:
            raise AssertionError(f"{self.binary} --help shows no integer default for {flag}")
        return int(match.group(1))

    def setting(self, env, flag, name):
        """A CONVEYOR_* value from `env` (a dict), else the binary's default."""
        return int(env[name]) if name in env else self.default(flag)

    @classmethod
    def of(cls, binary, subcommand=None):
        key = (binary, subcommand)
        if key not in cls._cache:
            cls._cache[key] = cls(binary, subcommand)
        return cls._cache[key]


def cmake_executables():
    """Every add_executable() name in the source tree's CMakeLists.txt files."""
    names = set()
    for root, dirs, files in os.walk(SOURCE_DIR):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build")) and d != "node_modules"]
        if "CMakeLists.txt" in files:
            with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
                names.update(re.findall(r"add_executable\(\s*([A-Za-z0-9_.+-]+)", f.read()))
    return names


_PACKAGE_OF_LIBRARY = {}  # resolved library path -> Debian package (dpkg -S is slow)


def needed_packages(binary):
    """Debian packages providing the shared libraries `binary` links directly."""
    exe = os.path.join(BIN_DIR, binary)
    if not os.access(exe, os.X_OK):
        raise AssertionError(f"{exe} does not exist: build it before this test")
    readelf = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True, check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf.stdout)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True)
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M))
    packages = {}
    for library in needed:
        if library not in resolved:
            raise AssertionError(f"{binary}: ldd cannot resolve {library}")
        if resolved[library] in _PACKAGE_OF_LIBRARY:
            packages[library] = _PACKAGE_OF_LIBRARY[resolved[library]]
            continue
        lib_dir = os.path.dirname(resolved[library]).removeprefix("/usr")
        owners = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True)
        package = None
        for line in owners.stdout.splitlines():
            owner, _, owned = line.partition(": ")
            if os.path.dirname(owned.strip()).removeprefix("/usr") == lib_dir:
                package = owner.split(":")[0]
                break
        if package is None:
            raise AssertionError(f"{binary}: no Debian package owns {resolved[library]}")
        _PACKAGE_OF_LIBRARY[resolved[library]] = package
        packages[library] = package
    return packages


def make_deploy_secrets(directory):
    """Runs tools/make-deploy-secrets.sh into `directory` (what an operator does)."""
    subprocess.run([path("tools", "make-deploy-secrets.sh"), directory], check=True,
                   capture_output=True, text=True, timeout=120)


class WithOperatorSecrets:
    """Mixin for a TestCase class: `secrets_dir` holds what
    tools/make-deploy-secrets.sh makes, for the class's tests to read."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._secrets_scratch = tempfile.TemporaryDirectory(prefix="conveyor-deploy-secrets-")
        cls.secrets_dir = os.path.join(cls._secrets_scratch.name, "secrets")
        make_deploy_secrets(cls.secrets_dir)

    @classmethod
    def tearDownClass(cls):
        cls._secrets_scratch.cleanup()
        super().tearDownClass()


def certificate_names(cert_file):
    """The subject CN and every SAN DNS name of a PEM certificate."""
    text = subprocess.run(["openssl", "x509", "-in", cert_file, "-noout", "-subject", "-ext",
                           "subjectAltName"], check=True, capture_output=True, text=True).stdout
    names = set(re.findall(r"DNS:([\w.*-]+)", text))
    names.update(re.findall(r"CN\s*=\s*([\w.-]+)", text))
    return names


def accepts(help_, name):
    """True if `name` (a --flag or CONVEYOR_* variable) is one the binary takes."""
    known = help_.flags if name.startswith("--") else help_.envs
    return name in known


def main(module_name="__main__"):
    global SOURCE_DIR, BIN_DIR
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    SOURCE_DIR = os.path.abspath(args.source_dir)
    BIN_DIR = os.path.abspath(args.bin_dir)
    program = unittest.main(module=module_name, argv=[sys.argv[0], "-v"] + rest, exit=False)
    sys.exit(0 if program.result.wasSuccessful() else 1)
