#!/usr/bin/env python3
"""Checks the deployment artefacts (deploy/) against the code and the binaries.

Everything a Dockerfile, compose file or Kubernetes manifest says about a
binary is checked against that binary's real `--help` output: the binary must
exist (as a CMake add_executable and as a built file in --bin-dir), every
CONVEYOR_* variable and every flag the artefacts set must be one it accepts,
every probe / Service / health check must point at the port the container
listens on, every path the images are built from must exist, and every shared
library a binary links must be installed in its runtime image.

Run by ctest (tests/deploy/CMakeLists.txt):
  artefacts_test.py --source-dir <repo> --bin-dir <build>/bin
"""

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, not a test result
    print("artefacts_test: python3-yaml is missing (tools/setup.sh installs it)", file=sys.stderr)
    sys.exit(1)

SOURCE_DIR = ""
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


# --------------------------------------------------------------- Dockerfile --

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


DOCKERFILE = None
IMAGES = None  # stage -> binary


def setUpModule():
    global DOCKERFILE, IMAGES
    DOCKERFILE = Dockerfile(path("deploy", "Dockerfile"))
    IMAGES = runtime_images(DOCKERFILE)


def image_stage(image):
    """'conveyor/resize:latest' -> 'resize' (the Dockerfile target it names)."""
    match = re.match(r"^(?:[\w.-]+/)*conveyor/([a-z0-9-]+)(?::[\w.-]+)?$", image)
    return match.group(1) if match else None


class DockerfileTest(unittest.TestCase):
    def test_has_one_runtime_image_per_binary(self):
        self.assertEqual(
            {"orchestrator", "download", "resize", "filter", "upload", "webhook", "cli"},
            set(IMAGES), "runtime targets with an ENTRYPOINT")
        for stage, binary in IMAGES.items():
            expected = "conveyor" if stage == "cli" else f"conveyor-{stage}"
            self.assertEqual(expected, binary, f"target {stage} runs {binary}")

    def test_builder_builds_every_shipped_binary_without_tests(self):
        runs = " ".join(DOCKERFILE.instructions("builder", "RUN"))
        self.assertIn("-DCONVEYOR_BUILD_TESTS=OFF", runs)
        self.assertIn("-DCONVEYOR_BUILD_BENCHMARKS=OFF", runs)
        self.assertIn("-G Ninja", runs)
        self.assertTrue(DOCKERFILE.stages["builder"]["base"].startswith("debian:12"))
        match = re.search(r"--target((?:\s+[\w.+-]+)+)", runs)
        self.assertIsNotNone(match, "builder names its cmake --build targets")
        built = set(match.group(1).split())
        executables = cmake_executables()
        for stage, binary in IMAGES.items():
            self.assertIn(binary, built, f"image {stage} copies {binary}, which is not built")
        for binary in built:
            self.assertIn(binary, executables, f"{binary} is no add_executable() in the tree")
            self.assertTrue(os.access(os.path.join(BIN_DIR, binary), os.X_OK),
                            f"{binary} is not built in {BIN_DIR}")

    def test_builder_installs_the_build_packages_of_setup_sh(self):
        # tools/setup.sh is the source of truth for build dependencies: its
        # "# build" and "# libraries" groups must all be in the builder image.
        with open(path("tools", "setup.sh"), encoding="utf-8") as f:
            text = f.read()
        array = re.search(r"packages=\((.*?)\n\)", text, re.S).group(1)
        wanted, group = set(), None
        for line in array.splitlines():
            line = line.strip()
            if line.startswith("#"):
                group = line.lstrip("# ").split()[0] if line.lstrip("# ") else None
            elif line and group in ("build", "libraries"):
                wanted.update(line.split())
        self.assertTrue(wanted, "no build packages found in tools/setup.sh")
        missing = wanted - DOCKERFILE.apt_packages("builder")
        self.assertFalse(missing, f"builder lacks packages tools/setup.sh installs: {missing}")

    def test_build_context_alone_configures_and_has_every_source(self):
        # What the builder sees: only the COPY'd paths, through .dockerignore.
        # Configure them as the builder does and dry-run the build of the
        # shipped targets: ninja -n fails on any source missing from the context.
        with open(path(".dockerignore"), encoding="utf-8") as f:
            patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        runs = " ".join(DOCKERFILE.instructions("builder", "RUN"))
        targets = re.search(r"--target((?:\s+[\w.+-]+)+)", runs).group(1).split()
        defines = re.findall(r"(-D[A-Z_]+=\S+)", runs)
        with tempfile.TemporaryDirectory(prefix="conveyor-docker-context-") as scratch:
            context = os.path.join(scratch, "src")
            os.makedirs(context)
            for rest in DOCKERFILE.instructions("builder", "COPY"):
                for source in rest.split()[:-1]:
                    source = source.rstrip("/")
                    origin = path(source)
                    if os.path.isdir(origin):
                        for root, dirs, files in os.walk(origin):
                            for name in files:
                                full = os.path.join(root, name)
                                rel = os.path.relpath(full, SOURCE_DIR)
                                if dockerignore_allows(patterns, rel):
                                    os.makedirs(os.path.dirname(os.path.join(context, rel)),
                                                exist_ok=True)
                                    shutil.copy2(full, os.path.join(context, rel))
                    else:
                        shutil.copy2(origin, os.path.join(context, source))
            build = os.path.join(scratch, "build")
            configure = subprocess.run(["cmake", "-S", context, "-B", build, "-G", "Ninja"] +
                                       defines, capture_output=True, text=True, timeout=300)
            self.assertEqual(0, configure.returncode,
                             "cmake on the image's build context failed:\n" +
                             configure.stdout[-2000:] + configure.stderr[-3000:])
            dry_run = subprocess.run(["ninja", "-C", build, "-n"] + targets,
                                     capture_output=True, text=True, timeout=120)
            self.assertEqual(0, dry_run.returncode,
                             "the image's build context lacks sources:\n" +
                             dry_run.stdout[-2000:] + dry_run.stderr[-2000:])

    def test_copy_sources_exist_and_are_in_the_build_context(self):
        with open(path(".dockerignore"), encoding="utf-8") as f:
            patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        copies = 0
        for stage in DOCKERFILE.order:
            for rest in DOCKERFILE.instructions(stage, "COPY"):
                args = rest.split()
                if any(a.startswith("--from=") for a in args):
                    source_stage = next(a for a in args if a.startswith("--from="))[7:]
                    self.assertIn(source_stage, DOCKERFILE.stages)
                    continue
                for source in [a for a in args if not a.startswith("--")][:-1]:
                    copies += 1
                    self.assertTrue(os.path.exists(path(source)), f"COPY {source}: not in the tree")
                    self.assertTrue(dockerignore_allows(patterns, source),
                                    f"COPY {source}: excluded by .dockerignore")
        self.assertGreater(copies, 0)
        # And the context leaves out build trees and node_modules.
        for excluded in ["build/CMakeCache.txt", "tools/s3rver/node_modules", "tests/deploy"]:
            self.assertFalse(dockerignore_allows(patterns, excluded), f"{excluded} in context")

    def test_runtime_images_copy_what_the_entrypoint_runs(self):
        for stage, binary in IMAGES.items():
            entrypoint = DOCKERFILE.entrypoint(stage)
            copied = [rest.split()[-1] for rest in DOCKERFILE.instructions(stage, "COPY")]
            self.assertIn(entrypoint[0], copied, f"{stage}: ENTRYPOINT {entrypoint[0]} not copied")
            for rest in DOCKERFILE.instructions(stage, "COPY"):
                source = rest.split()[-2]
                if "--from=builder" in rest:
                    self.assertTrue(source.startswith("/build/bin/"), rest)
                    self.assertTrue(os.access(os.path.join(BIN_DIR, os.path.basename(source)),
                                              os.X_OK), f"{stage}: {source} is not built")
            self.assertTrue(DOCKERFILE.stages[DOCKERFILE.chain(stage)[-1]]["base"]
                            .startswith("debian:12-slim"), f"{stage} is not on debian:12-slim")

    def test_runtime_images_run_as_non_root(self):
        for stage in IMAGES:
            user = DOCKERFILE.user(stage)
            self.assertIsNotNone(user, f"{stage}: no USER")
            self.assertNotIn(user.split(":")[0], {"0", "root"}, f"{stage}: runs as root")

    def test_servers_listen_on_all_interfaces_and_expose_that_port(self):
        for stage, binary in IMAGES.items():
            if stage == "cli":
                continue
            entrypoint = DOCKERFILE.entrypoint(stage)
            port = listen_port(entrypoint)
            self.assertIsNotNone(port, f"{stage}: ENTRYPOINT has no --listen")
            self.assertIn(f"0.0.0.0:{port}", entrypoint)
            exposed = {int(p.split("/")[0]) for e in DOCKERFILE.inherited(stage, "EXPOSE")
                       for p in e.split()}
            self.assertEqual({port}, exposed, f"{stage}: EXPOSE vs --listen")

    def test_entrypoint_flags_and_env_exist_in_help(self):
        for stage, binary in IMAGES.items():
            help_ = BinaryHelp.of(binary)
            for arg in DOCKERFILE.entrypoint(stage)[1:]:
                if arg.startswith("--"):
                    self.assertIn(arg.split("=")[0], help_.flags, f"{stage}: {binary} {arg}")
            for name in DOCKERFILE.env(stage):
                self.assertIn(name, help_.envs, f"{stage}: ENV {name} unknown to {binary}")

    def test_runtime_images_install_every_linked_library(self):
        for stage in IMAGES:
            installed = DOCKERFILE.apt_packages(stage) | SLIM_BASE_PACKAGES
            shipped = [os.path.basename(rest.split()[-2])
                       for rest in DOCKERFILE.instructions(stage, "COPY")
                       if "--from=builder" in rest]
            self.assertIn(IMAGES[stage], shipped)
            for binary in shipped:
                for library, package in needed_packages(binary).items():
                    self.assertIn(package, installed,
                                  f"image {stage}: {binary} links {library} from {package}, "
                                  "which the image does not install")

    def test_only_image_stages_carry_opencv(self):
        for stage in IMAGES:
            opencv = {p for p in DOCKERFILE.apt_packages(stage) if p.startswith("libopencv")}
            if stage in OPENCV_IMAGES:
                self.assertTrue(opencv, f"{stage} needs OpenCV")
            else:
                self.assertFalse(opencv, f"{stage} should not carry OpenCV: {opencv}")


# ------------------------------------------------------------------ compose --

class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        documents = load_yaml_documents(path("deploy", "compose.yaml"))
        assert len(documents) == 1
        cls.compose = documents[0]
        cls.services = cls.compose["services"]

    def service_binary(self, name):
        build = self.services[name].get("build")
        if not build:
            return None, None
        self.assertEqual("deploy/Dockerfile", build["dockerfile"])
        self.assertTrue(os.path.isdir(os.path.normpath(
            os.path.join(path("deploy"), build["context"]))))
        self.assertEqual(os.path.normpath(os.path.join(path("deploy"), build["context"])),
                         os.path.normpath(SOURCE_DIR), f"{name}: context is the repo root")
        target = build["target"]
        self.assertIn(target, IMAGES, f"{name}: no Dockerfile target {target}")
        return target, IMAGES[target]

    def service_port(self, name):
        target, _ = self.service_binary(name)
        return listen_port(DOCKERFILE.entrypoint(target))

    def test_every_conveyor_image_is_present(self):
        targets = {self.service_binary(n)[0] for n in self.services}
        for stage in STAGES + ["orchestrator"]:
            self.assertIn(stage, targets)
        orchestrators = [n for n in self.services if self.service_binary(n)[0] == "orchestrator"]
        self.assertGreaterEqual(len(orchestrators), 2, "two orchestrator replicas")

    def test_redis_is_append_only_with_a_volume_and_a_healthcheck(self):
        redis = self.services["redis"]
        command = redis["command"]
        self.assertIn("--appendonly", command)
        self.assertEqual("yes", command[command.index("--appendonly") + 1])
        volume = redis["volumes"][0].split(":")
        self.assertEqual("/data", volume[1])
        self.assertIn(volume[0], self.compose["volumes"])
        self.assertIn("redis-cli", redis["healthcheck"]["test"])
        self.assertIn("ping", redis["healthcheck"]["test"])

    def test_environment_names_exist_in_help(self):
        for name, service in self.services.items():
            _, binary = self.service_binary(name)
            if binary is None:
                continue
            help_ = BinaryHelp.of(binary)
            for key in service.get("environment", {}):
                self.assertIn(key, help_.envs, f"compose {name}: {key} unknown to {binary}")
            for field in ("command", "entrypoint"):
                for arg in service.get(field) or []:
                    if str(arg).startswith("--"):
                        self.assertIn(arg.split("=")[0], help_.flags, f"compose {name}: {arg}")

    def test_every_service_has_a_healthcheck_on_its_port(self):
        for name, service in self.services.items():
            self.assertIn("healthcheck", service, f"compose {name}: no healthcheck")
            test = service["healthcheck"]["test"]
            self.assertEqual("CMD", test[0], f"{name}: exec form, no shell")
            target, binary = self.service_binary(name)
            if binary is None:
                continue
            port = self.service_port(name)
            if test[1] == "conveyor":
                # The CLI shipped in the image: flags and subcommand must exist.
                self.assertEqual("orchestrator", target)
                cli = BinaryHelp.of("conveyor")
                args = test[2:]
                subcommand = [a for i, a in enumerate(args) if not a.startswith("--")
                              and (i == 0 or not args[i - 1].startswith("--"))]
                self.assertEqual(1, len(subcommand), test)
                self.assertIn(subcommand[0], cli.subcommands, f"conveyor {subcommand[0]}")
                for arg in args:
                    if arg.startswith("--"):
                        self.assertIn(arg, cli.flags | BinaryHelp.of("conveyor", subcommand[0])
                                      .flags, f"conveyor {arg}")
                self.assertIn(f"127.0.0.1:{port}", args)
            else:
                joined = " ".join(test[1:])
                match = re.search(r"/dev/tcp/127\.0\.0\.1/(\d+)", joined)
                self.assertIsNotNone(match, f"{name}: unrecognised health check {test}")
                self.assertEqual(port, int(match.group(1)), f"{name}: health check port")

    def test_orchestrator_targets_name_services_and_their_ports(self):
        for name, service in self.services.items():
            if self.service_binary(name)[0] != "orchestrator":
                continue
            env = service["environment"]
            for stage in STAGES:
                target = env[f"CONVEYOR_{stage.upper()}_TARGET"]
                match = re.match(r"^dns:///([\w-]+):(\d+)$", target)
                self.assertIsNotNone(match, target)
                self.assertIn(match.group(1), self.services)
                self.assertEqual(stage, self.service_binary(match.group(1))[0])
                self.assertEqual(self.service_port(match.group(1)), int(match.group(2)), target)
            redis_url = re.match(r"^redis://(?::[^@]*@)?([\w-]+):(\d+)(?:/\d+)?$",
                                 env["CONVEYOR_REDIS_URL"])
            self.assertIsNotNone(redis_url)
            self.assertIn(redis_url.group(1), self.services)
            self.assertEqual("service_healthy",
                             service["depends_on"]["redis"]["condition"])

    def test_orchestrators_cannot_overload_a_stage(self):
        # Capacity (docs/deploy.md): what every orchestrator may keep in flight
        # to a stage fits in that stage's threads + queue, else the surplus is
        # refused with RESOURCE_EXHAUSTED and spends retry attempts.
        orchestrators = [n for n in self.services if self.service_binary(n)[0] == "orchestrator"]
        in_flight = 0
        for name in orchestrators:
            env = self.services[name].get("environment", {})
            in_flight += BinaryHelp.of("conveyor-orchestrator").setting(
                env, "--max-in-flight", "CONVEYOR_MAX_IN_FLIGHT")
        for name in self.services:
            target, binary = self.service_binary(name)
            if target not in STAGES:
                continue
            help_ = BinaryHelp.of(binary)
            env = self.services[name].get("environment", {})
            capacity = (help_.setting(env, "--worker-threads", "CONVEYOR_WORKER_THREADS") +
                        help_.setting(env, "--max-queued", "CONVEYOR_MAX_QUEUED"))
            self.assertLessEqual(in_flight, capacity,
                                 f"compose {name}: orchestrators may send {in_flight} calls, "
                                 f"one replica takes {capacity}")

    def test_published_ports_are_served(self):
        for name, service in self.services.items():
            for mapping in service.get("ports", []):
                container = int(str(mapping).split(":")[-1].split("/")[0])
                self.assertEqual(self.service_port(name), container, f"{name}: {mapping}")

    def test_named_volumes_are_declared(self):
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if not source.startswith((".", "/")):
                    self.assertIn(source, self.compose.get("volumes", {}), f"{name}: {volume}")


# --------------------------------------------------------------- kubernetes --

class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = path("deploy", "k8s")
        with open(os.path.join(cls.dir, "kustomization.yaml"), encoding="utf-8") as f:
            cls.kustomization = yaml.safe_load(f)
        cls.objects = []
        for resource in cls.kustomization["resources"]:
            for doc in load_yaml_documents(os.path.join(cls.dir, resource)):
                cls.objects.append((resource, doc))

    def of_kind(self, kind):
        return [doc for _, doc in self.objects if doc["kind"] == kind]

    def find(self, kind, name):
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        self.fail(f"no {kind} {name}")

    def workloads(self):
        return self.of_kind("Deployment") + self.of_kind("StatefulSet")

    def conveyor_containers(self):
        """(workload, container, image stage, binary, listen port) per conveyor container."""
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                stage = image_stage(container["image"])
                if stage is None:
                    continue
                self.assertIn(stage, IMAGES, f"{container['image']}: no such Dockerfile target")
                argv = DOCKERFILE.entrypoint(stage) + container.get("args", [])
                yield workload, container, stage, IMAGES[stage], listen_port(argv)

    def test_kustomization_lists_every_manifest_and_only_existing_files(self):
        listed = self.kustomization["resources"]
        for resource in listed:
            self.assertTrue(os.path.isfile(os.path.join(self.dir, resource)), resource)
        on_disk = {f for f in os.listdir(self.dir)
                   if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml"}
        self.assertEqual(on_disk, set(listed), "manifests not in kustomization.yaml")
        self.assertEqual(K8S_NAMESPACE, self.kustomization["namespace"])
        images = {i["name"] for i in self.kustomization.get("images", [])}
        used = {c["image"].split(":")[0] for _, c, *_ in self.conveyor_containers()}
        self.assertEqual(used, images, "kustomization images: vs images used")

    def test_every_object_is_well_formed(self):
        for resource, doc in self.objects:
            for field in ("apiVersion", "kind", "metadata"):
                self.assertIn(field, doc, f"{resource}: {field}")
            if doc["kind"] != "Namespace":
                self.assertEqual(K8S_NAMESPACE, doc["metadata"].get("namespace"),
                                 f"{resource}: {doc['kind']} {doc['metadata']['name']}")
        self.find("Namespace", K8S_NAMESPACE)

    def test_every_image_exists_and_stages_and_orchestrator_are_deployed(self):
        deployed = {stage for _, _, stage, _, _ in self.conveyor_containers()}
        self.assertEqual(set(STAGES) | {"orchestrator"}, deployed)
        orchestrator = self.find("Deployment", "conveyor-orchestrator")
        self.assertGreaterEqual(orchestrator["spec"]["replicas"], 2)

    def test_env_names_exist_in_help(self):
        for workload, container, stage, binary, _ in self.conveyor_containers():
            help_ = BinaryHelp.of(binary)
            env = container.get("env", [])
            text = yaml.safe_dump(container)
            for entry in env:
                name = entry["name"]
                if name in help_.envs:
                    continue
                # Allowed only as a helper for $(NAME) expansion in another value.
                self.assertIn(f"$({name})", text,
                              f"{workload['metadata']['name']}: {name} unknown to {binary}")
            for arg in container.get("args", []):
                if arg.startswith("--"):
                    self.assertIn(arg.split("=")[0], help_.flags, f"{binary} {arg}")

    def resolve_port(self, container, port):
        if isinstance(port, int):
            return port
        for declared in container.get("ports", []):
            if declared.get("name") == port:
                return declared["containerPort"]
        self.fail(f"container {container['name']}: no port named {port}")

    def test_ports_and_probes_match_the_listen_port(self):
        for workload, container, stage, binary, port in self.conveyor_containers():
            where = f"{workload['metadata']['name']}/{container['name']}"
            self.assertIsNotNone(port, where)
            self.assertEqual([port], [p["containerPort"] for p in container["ports"]], where)
            for probe_kind in ("readinessProbe", "livenessProbe"):
                probe = container.get(probe_kind)
                self.assertIsNotNone(probe, f"{where}: no {probe_kind}")
                handler = probe.get("grpc") or probe.get("tcpSocket")
                self.assertIsNotNone(handler, f"{where}: {probe_kind} is not grpc/tcpSocket")
                self.assertEqual(port, self.resolve_port(container, handler["port"]),
                                 f"{where}: {probe_kind} port")
            # Readiness is the real grpc.health.v1 check everywhere; workers
            # are also live only while their health service answers.
            self.assertIn("grpc", container["readinessProbe"], where)
            if stage in STAGES:
                self.assertIn("grpc", container["livenessProbe"], where)

    def selected_pods(self, selector):
        """Workload pod templates whose labels match `selector` (matchLabels form)."""
        pods = []
        for workload in self.workloads():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in selector.items()):
                pods.append(workload)
        return pods

    def test_services_select_workloads_on_served_ports(self):
        for service in self.of_kind("Service"):
            name = service["metadata"]["name"]
            pods = self.selected_pods(service["spec"]["selector"])
            self.assertEqual(1, len(pods), f"service {name} selects {len(pods)} workloads")
            container = pods[0]["spec"]["template"]["spec"]["containers"][0]
            for port in service["spec"]["ports"]:
                target = self.resolve_port(container, port.get("targetPort", port["port"]))
                self.assertEqual(port["port"], target, f"service {name}: port vs targetPort")
                self.assertIn(target, [p["containerPort"] for p in container["ports"]])

    def test_stage_services_are_headless(self):
        for stage in STAGES:
            service = self.find("Service", f"conveyor-{stage}")
            self.assertEqual("None", str(service["spec"].get("clusterIP")),
                             f"conveyor-{stage} must be headless for dns:/// + round_robin")

    def test_orchestrator_targets_are_headless_services_on_worker_ports(self):
        container = self.find("Deployment", "conveyor-orchestrator")[
            "spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        ports = {stage: port for _, _, stage, _, port in self.conveyor_containers()}
        for stage in STAGES:
            value = env[f"CONVEYOR_{stage.upper()}_TARGET"]["value"]
            match = re.match(r"^dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$",
                             value)
            self.assertIsNotNone(match, value)
            self.assertEqual(K8S_NAMESPACE, match.group(2))
            service = self.find("Service", match.group(1))
            self.assertEqual("None", str(service["spec"].get("clusterIP")))
            self.assertEqual(stage, service["spec"]["selector"]["app.kubernetes.io/component"])
            self.assertEqual(ports[stage], int(match.group(3)), value)
        redis_url = env["CONVEYOR_REDIS_URL"]["value"]
        match = re.match(r"^redis://(?::[^@]+@)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local"
                         r":(\d+)(?:/\d+)?$", redis_url)
        self.assertIsNotNone(match, redis_url)
        redis_service = self.find("Service", match.group(1))
        self.assertEqual(int(match.group(3)), redis_service["spec"]["ports"][0]["port"])

    def test_redis_is_a_statefulset_with_aof_on_a_volume(self):
        statefulset = self.find("StatefulSet", "conveyor-redis")
        container = statefulset["spec"]["template"]["spec"]["containers"][0]
        args = container.get("command", []) + container.get("args", [])
        self.assertEqual("yes", args[args.index("--appendonly") + 1])
        data_dir = args[args.index("--dir") + 1]
        claims = [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        self.assertIn(data_dir, [mounts[c] for c in claims if c in mounts])
        self.assertEqual("conveyor-redis", statefulset["spec"]["serviceName"])

    def test_secret_references_resolve(self):
        secrets = {s["metadata"]["name"]: s for s in self.of_kind("Secret")}
        references = 0
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                for entry in container.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        references += 1
                        self.assertIn(ref["name"], secrets)
                        secret = secrets[ref["name"]]
                        keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                        self.assertIn(ref["key"], keys, f"secret {ref['name']}")
        self.assertGreater(references, 0)
        # Secret volumes name Secrets and keys that exist.
        for workload in self.workloads():
            for volume in workload["spec"]["template"]["spec"].get("volumes", []):
                if "secret" not in volume:
                    continue
                secret = secrets[volume["secret"]["secretName"]]
                keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                for item in volume["secret"].get("items", []):
                    self.assertIn(item["key"], keys, volume["name"])
        # The webhook secrets file is a mounted Secret, never an env value.
        webhook = self.find("Deployment", "conveyor-webhook")["spec"]["template"]["spec"]
        container = webhook["containers"][0]
        path = self.env_value(container, "CONVEYOR_WEBHOOK_SECRETS_FILE", "")
        secret_volumes = {v["name"] for v in webhook.get("volumes", []) if "secret" in v}
        self.assertTrue(any(path.startswith(m["mountPath"] + "/") and m["name"] in secret_volumes
                            for m in container.get("volumeMounts", [])), path)
        # The S3 credentials come from Secrets.
        for stage, names in {"upload": ["CONVEYOR_S3_ACCESS_KEY_ID",
                                        "CONVEYOR_S3_SECRET_ACCESS_KEY"]}.items():
            container = self.find("Deployment", f"conveyor-{stage}")[
                "spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e for e in container["env"]}
            for name in names:
                self.assertIn("secretKeyRef", env[name].get("valueFrom", {}), name)

    def env_value(self, container, name, default):
        for entry in container.get("env", []):
            if entry["name"] == name:
                return entry["value"]
        return default

    def test_graceful_termination_outlasts_drain_and_steps(self):
        for workload, container, stage, binary, _ in self.conveyor_containers():
            where = workload["metadata"]["name"]
            spec = workload["spec"]["template"]["spec"]
            grace_s = spec["terminationGracePeriodSeconds"]
            drain_s = parse_duration_s(self.env_value(container, "CONVEYOR_SHUTDOWN_GRACE", "30s"))
            pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            pre_stop_s = 0
            if pre_stop.get("command", [None])[0] == "sleep":
                pre_stop_s = float(pre_stop["command"][1])
            self.assertGreater(grace_s, drain_s + pre_stop_s, where)
            if stage in STAGES:
                self.assertGreater(drain_s, DEFAULT_STEP_TIMEOUT_S,
                                   f"{where}: drain shorter than a step's default deadline")
                strategy = workload["spec"]["strategy"]["rollingUpdate"]
                self.assertEqual(0, strategy["maxUnavailable"], where)

    def test_resources_are_set(self):
        for workload in self.workloads():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                resources = container.get("resources", {})
                self.assertIn("memory", resources.get("requests", {}), container["name"])
                self.assertIn("cpu", resources.get("requests", {}), container["name"])
                self.assertIn("memory", resources.get("limits", {}), container["name"])

    def test_pods_meet_the_restricted_pod_security_standard(self):
        namespace = self.find("Namespace", K8S_NAMESPACE)
        self.assertEqual("restricted", namespace["metadata"]["labels"]
                         ["pod-security.kubernetes.io/enforce"])
        for workload in self.workloads():
            spec = workload["spec"]["template"]["spec"]
            where = workload["metadata"]["name"]
            pod = spec.get("securityContext", {})
            self.assertTrue(pod.get("runAsNonRoot"), f"{where}: runAsNonRoot")
            self.assertNotEqual(0, pod.get("runAsUser"), f"{where}: runAsUser 0")
            self.assertEqual("RuntimeDefault", pod.get("seccompProfile", {}).get("type"), where)
            for container in spec["containers"]:
                context = container.get("securityContext", {})
                self.assertIs(False, context.get("allowPrivilegeEscalation"), where)
                self.assertEqual(["ALL"], context.get("capabilities", {}).get("drop"), where)

    def test_orchestrators_cannot_overload_a_stage_at_its_minimum_size(self):
        hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]
                for h in self.of_kind("HorizontalPodAutoscaler")}
        env_of = {}
        for workload, container, stage, binary, _ in self.conveyor_containers():
            env_of[stage] = {e["name"]: e["value"] for e in container.get("env", [])
                             if "value" in e}
        in_flight = hpas["conveyor-orchestrator"]["maxReplicas"] * BinaryHelp.of(
            "conveyor-orchestrator").setting(env_of["orchestrator"], "--max-in-flight",
                                             "CONVEYOR_MAX_IN_FLIGHT")
        for stage in STAGES:
            help_ = BinaryHelp.of(IMAGES[stage])
            per_pod = (help_.setting(env_of[stage], "--worker-threads", "CONVEYOR_WORKER_THREADS") +
                       help_.setting(env_of[stage], "--max-queued", "CONVEYOR_MAX_QUEUED"))
            pods = hpas[f"conveyor-{stage}"]["minReplicas"]
            self.assertLessEqual(in_flight, pods * per_pod,
                                 f"{stage}: up to {in_flight} calls from the orchestrators, "
                                 f"{pods} pods x {per_pod} slots")

    def test_every_stage_has_an_hpa_and_a_pdb(self):
        deployments = {d["metadata"]["name"]: d for d in self.of_kind("Deployment")}
        hpas = {h["spec"]["scaleTargetRef"]["name"]: h
                for h in self.of_kind("HorizontalPodAutoscaler")}
        for hpa in hpas.values():
            self.assertEqual("Deployment", hpa["spec"]["scaleTargetRef"]["kind"])
            self.assertIn(hpa["spec"]["scaleTargetRef"]["name"], deployments)
            self.assertGreaterEqual(hpa["spec"]["minReplicas"], 2)
        for pdb in self.of_kind("PodDisruptionBudget"):
            pods = self.selected_pods(pdb["spec"]["selector"]["matchLabels"])
            self.assertEqual(1, len(pods), f"PDB {pdb['metadata']['name']}")
        pdb_targets = {self.selected_pods(p["spec"]["selector"]["matchLabels"])[0]
                       ["metadata"]["name"] for p in self.of_kind("PodDisruptionBudget")}
        for stage in STAGES + ["orchestrator"]:
            self.assertIn(f"conveyor-{stage}", hpas, f"no HPA for {stage}")
            self.assertIn(f"conveyor-{stage}", pdb_targets, f"no PDB for {stage}")
            self.assertIn("cpu", yaml.safe_dump(deployments[f"conveyor-{stage}"]
                                                ["spec"]["template"]["spec"]["containers"][0]
                                                ["resources"]["requests"]))

    def test_network_policy_lets_only_the_orchestrator_reach_workers(self):
        policies = self.of_kind("NetworkPolicy")
        deny = [p for p in policies if p["spec"]["podSelector"] == {}]
        self.assertTrue(deny, "a default-deny policy")
        self.assertIn("Ingress", deny[0]["spec"]["policyTypes"])
        ports = {stage: port for _, _, stage, _, port in self.conveyor_containers()}
        for stage in STAGES:
            labels = self.find("Deployment", f"conveyor-{stage}")[
                "spec"]["template"]["metadata"]["labels"]
            ingress = []
            for policy in policies:
                selector = policy["spec"]["podSelector"].get("matchLabels", {})
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    ingress.extend(policy["spec"].get("ingress", []))
            self.assertTrue(ingress, f"{stage}: no ingress rule")
            for rule in ingress:
                peers = rule.get("from", [])
                self.assertTrue(peers, f"{stage}: ingress from anywhere")
                for peer in peers:
                    self.assertEqual("orchestrator", peer["podSelector"]["matchLabels"]
                                     ["app.kubernetes.io/component"], f"{stage}: {peer}")
                self.assertIn(ports[stage], [p["port"] for p in rule["ports"]], stage)


def main():
    global SOURCE_DIR, BIN_DIR
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    SOURCE_DIR = os.path.abspath(args.source_dir)
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
