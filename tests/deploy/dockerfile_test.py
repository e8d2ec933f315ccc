#!/usr/bin/env python3
"""deploy/Dockerfile against the tree, .dockerignore and the built binaries.

  dockerfile_test.py --source-dir <repo> --bin-dir <build>/bin
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import deploy_checks as checks
from deploy_checks import (OPENCV_IMAGES, SLIM_BASE_PACKAGES, BinaryHelp, accepts,
                           cmake_executables, needed_packages, path)
from dockerfile_model import (THIRD_PARTY_IMAGES, Dockerfile, conveyor_images,
                              dockerignore_allows, listen_port, runtime_images)

DOCKERFILE = None
# Where compose and Kubernetes serve the orchestrator's dashboard
# (CONVEYOR_HTTP_LISTEN 0.0.0.0:8080).
DASHBOARD_PORT = 8080
IMAGES = None  # stage -> binary, Conveyor's images only


def setUpModule():
    global DOCKERFILE, IMAGES
    DOCKERFILE = Dockerfile(path("deploy", "Dockerfile"))
    IMAGES = conveyor_images(DOCKERFILE)


class DockerfileTest(unittest.TestCase):
    def test_has_one_runtime_image_per_binary(self):
        self.assertEqual(
            {"orchestrator", "download", "resize", "filter", "upload", "webhook", "cli"},
            set(IMAGES), "runtime targets with an ENTRYPOINT")
        self.assertEqual(set(IMAGES) | set(THIRD_PARTY_IMAGES),
                         set(runtime_images(DOCKERFILE)), "every target is accounted for")
        for stage, program in THIRD_PARTY_IMAGES.items():
            self.assertEqual(program, runtime_images(DOCKERFILE)[stage], stage)
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
            self.assertTrue(os.access(os.path.join(checks.BIN_DIR, binary), os.X_OK),
                            f"{binary} is not built in {checks.BIN_DIR}")

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
                                rel = os.path.relpath(full, checks.SOURCE_DIR)
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
                if "--from=builder" in rest and source == "/build/objects/":
                    # upload's empty, user-owned objects directory: made by the builder.
                    self.assertEqual("upload", stage, rest)
                    self.assertIn("--chown=10001:10001", rest)
                    self.assertIn("mkdir /build/objects",
                                  " ".join(DOCKERFILE.instructions("builder", "RUN")))
                    continue
                if "--from=builder" in rest:
                    self.assertTrue(source.startswith("/build/bin/"), rest)
                    self.assertTrue(os.access(os.path.join(checks.BIN_DIR, os.path.basename(source)),
                                              os.X_OK), f"{stage}: {source} is not built")
            self.assertTrue(DOCKERFILE.stages[DOCKERFILE.chain(stage)[-1]]["base"]
                            .startswith("debian:12-slim"), f"{stage} is not on debian:12-slim")

    def test_runtime_images_run_as_non_root(self):
        for stage in runtime_images(DOCKERFILE):
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
            # The orchestrator also exposes its dashboard's port, which the
            # deployments turn on with CONVEYOR_HTTP_LISTEN.
            extra = {DASHBOARD_PORT} if stage == "orchestrator" else set()
            self.assertEqual({port} | extra, exposed, f"{stage}: EXPOSE vs --listen")

    def test_entrypoint_flags_and_env_exist_in_help(self):
        for stage, binary in IMAGES.items():
            help_ = BinaryHelp.of(binary)
            for arg in DOCKERFILE.entrypoint(stage)[1:]:
                if arg.startswith("--"):
                    self.assertTrue(accepts(help_, arg.split("=")[0]), f"{stage}: {binary} {arg}")
            for name in DOCKERFILE.env(stage):
                self.assertTrue(accepts(help_, name), f"{stage}: ENV {name} unknown to {binary}")

    def test_runtime_images_install_every_linked_library(self):
        for stage in IMAGES:
            installed = DOCKERFILE.apt_packages(stage) | SLIM_BASE_PACKAGES
            shipped = [os.path.basename(rest.split()[-2])
                       for rest in DOCKERFILE.instructions(stage, "COPY")
                       if "--from=builder /build/bin/" in rest]
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


    def test_image_stages_are_folded_into_library_bases(self):
        # One base per group of linked libraries; an image stage is only its
        # binary, port and entrypoint (no apt-get of its own, no USER switch).
        for stage in IMAGES:
            self.assertFalse(DOCKERFILE.instructions(stage, "RUN"), f"{stage} runs commands")
            base = DOCKERFILE.stages[stage]["base"]
            self.assertTrue(base.startswith("runtime"), f"{stage} is built FROM {base}")
            self.assertTrue(DOCKERFILE.instructions(base, "USER"), f"{base}: no USER")

    def test_third_party_images_are_debian_packages_run_as_non_root(self):
        for stage, program in THIRD_PARTY_IMAGES.items():
            self.assertTrue(DOCKERFILE.stages[stage]["base"].startswith("debian:12-slim"), stage)
            self.assertIn({"redis": "redis-server", "redis-tunnel": "stunnel4"}[stage],
                          DOCKERFILE.apt_packages(stage), stage)
            self.assertTrue(DOCKERFILE.entrypoint(stage)[0].endswith("/" + program), stage)


if __name__ == "__main__":
    checks.main()
