#!/usr/bin/env python3
"""No usable secret is committed under deploy/: no private key, webhook
secret, password, token or cloud key, no Kubernetes Secret with data, and no
placeholder someone might deploy unchanged. The directories the operator's
secrets go to (tools/make-deploy-secrets.sh) are git-ignored.

  committed_secrets_test.py --source-dir <repo> --bin-dir <build>/bin
"""

import os
import re
import subprocess
import unittest

import yaml

import deploy_checks as checks
from deploy_checks import path

# What a committed secret looks like; each found anywhere under deploy/ fails.
SECRET_PATTERNS = {
    "a PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    "a password in a Redis URL": re.compile(r"rediss?(?:-sentinel)?://[^\s/@<$]*:[^\s/@<$]+@"),
    "requirepass with a value": re.compile(r"requirepass\s+[\"']?[^\s\"'$<]+"),
    "an AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a placeholder secret": re.compile(r"change-?me|replace-me", re.I),
}
OPERATOR_DIRS = ["deploy/secrets", "deploy/k8s/secrets"]


def committed_files():
    """deploy/'s files as git tracks them (the tree walk where git is absent)."""
    try:
        out = subprocess.run(["git", "-C", checks.SOURCE_DIR, "ls-files", "deploy"], check=True,
                             capture_output=True, text=True).stdout.split()
        if out:
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for root, dirs, names in os.walk(path("deploy")):
        rel_root = os.path.relpath(root, checks.SOURCE_DIR)
        dirs[:] = [d for d in dirs if os.path.join(rel_root, d) not in OPERATOR_DIRS]
        files.extend(os.path.join(rel_root, n) for n in names)
    return files


class CommittedSecretsTest(unittest.TestCase):
    def test_no_secret_value_under_deploy(self):
        files = committed_files()
        self.assertIn("deploy/compose.yaml", files)
        for rel in files:
            with open(path(rel), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for what, pattern in SECRET_PATTERNS.items():
                match = pattern.search(text)
                self.assertIsNone(match, f"{rel}: {what} ({match and match.group(0)[:24]}...)")

    def test_no_kubernetes_secret_carries_data(self):
        for rel in committed_files():
            if not rel.endswith((".yaml", ".yml")):
                continue
            with open(path(rel), encoding="utf-8") as f:
                for doc in yaml.safe_load_all(f):
                    if isinstance(doc, dict) and doc.get("kind") == "Secret":
                        self.assertFalse(doc.get("data") or doc.get("stringData"),
                                         f"{rel}: Secret {doc['metadata']['name']} has values")

    def test_operator_secret_directories_are_ignored(self):
        for directory in OPERATOR_DIRS:
            self.assertFalse([f for f in committed_files() if f.startswith(directory + "/")],
                             f"{directory} is committed")
            try:
                result = subprocess.run(["git", "-C", checks.SOURCE_DIR, "check-ignore", "-q",
                                         f"{directory}/redis-password"], capture_output=True)
            except OSError:
                self.skipTest("git is not installed")
            if result.returncode == 128:
                self.skipTest("not a git checkout")
            self.assertEqual(0, result.returncode, f"{directory}/ is not git-ignored")

    def test_patterns_find_what_they_are_for(self):
        # Each pattern matches a sample of its kind, so a silent regex typo
        # cannot turn the scan into a test that cannot fail.
        samples = {
            "a PEM private key": "-----BEGIN EC PRIVATE KEY-----",
            "a webhook secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "a password in a Redis URL": "redis://:hunter2@redis:6379/0",
            "requirepass with a value": "--requirepass hunter2",
            "an AWS access key id": "AKIAABCDEFGHIJKLMNOP",
            "a placeholder secret": "password: change-me-redis-password",
        }
        for what, pattern in SECRET_PATTERNS.items():
            self.assertRegex(samples[what], pattern, what)
        self.assertNotRegex("redis://127.0.0.1:6380/0", SECRET_PATTERNS["a password in a Redis URL"])


if __name__ == "__main__":
    checks.main()
