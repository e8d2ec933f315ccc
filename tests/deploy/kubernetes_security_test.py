#!/usr/bin/env python3
"""deploy/k8s's security: pods unprivileged on read-only roots, no secret in
the manifests (a secretGenerator over operator files instead), certificates
mounted in every pod and issued for the names each hop dials (from files or
cert-manager), Redis TLS-only behind an ACL, and who may reach whom.

  kubernetes_security_test.py --source-dir <repo> --bin-dir <build>/bin
"""

import os
import posixpath
import re
import shutil
import subprocess
import tempfile

import yaml

import deploy_checks as checks
from deploy_checks import (K8S_NAMESPACE, STAGES, WithOperatorSecrets, certificate_names,
                           load_yaml_documents)
from k8s_model import KubernetesManifests

TLS_SERVERS = STAGES + ["orchestrator", "redis"]



class KubernetesSecurityTest(WithOperatorSecrets, KubernetesManifests):
    def generated_keys(self, name):
        """The keys of generated Secret `name`, env files read from the script's output."""
        keys = set()
        for key in self.secret_generators()[name]:
            if isinstance(key, tuple):
                with open(os.path.join(self.secrets_dir, os.path.basename(key[1]))) as f:
                    keys.update(l.split("=", 1)[0] for l in f if "=" in l)
            else:
                keys.add(key)
        return keys

    def mounted_secret(self, workload, container, file_path):
        """The (Secret name, key) a container reads `file_path` from."""
        spec = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            if posixpath.dirname(file_path) == mount["mountPath"]:
                secret = volumes[mount["name"]].get("secret")
                self.assertIsNotNone(secret, f"{file_path}: {mount['name']} is not a Secret")
                key = posixpath.basename(file_path)
                items = {i["path"]: i["key"] for i in secret.get("items", [])}
                return secret["secretName"], items.get(key, key)
        self.fail(f"{workload['metadata']['name']}: nothing mounted at {file_path}")

    def test_no_secret_object_or_value_is_committed(self):
        self.assertFalse(self.of_kind("Secret"), "Secrets are generated, never listed")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "secrets.yaml")))
        generated = self.secret_generators()
        for name in ["conveyor-redis", "conveyor-tokens", "conveyor-webhook", "conveyor-s3"] + [
                f"conveyor-tls-{s}" for s in TLS_SERVERS]:
            self.assertIn(name, generated, f"secretGenerator has no {name}")
        made = set(os.listdir(self.secrets_dir))
        for generator in self.kustomization["secretGenerator"]:
            sources = [f.split("=", 1)[-1] for f in generator.get("files", [])]
            for source in sources + generator.get("envs", []):
                self.assertTrue(source.startswith("secrets/"), source)
                self.assertIn(os.path.basename(source), made,
                              f"tools/make-deploy-secrets.sh does not make {source}")
            self.assertNotIn("literals", generator, f"{generator['name']}: committed literals")
            self.assertNotIn("secrets/ca.key", sources, "the CA key never enters the cluster")
        with open(checks.path(".gitignore"), encoding="utf-8") as f:
            self.assertIn("/deploy/k8s/secrets/", f.read().split())

    def test_secret_references_resolve(self):
        references = 0
        for workload in self.workloads():
            spec = workload["spec"]["template"]["spec"]
            for container in spec["containers"]:
                for entry in container.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        references += 1
                        self.assertIn(ref["key"], self.generated_keys(ref["name"]), ref["name"])
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    references += 1
                    name = volume["secret"]["secretName"]
                    for item in volume["secret"].get("items", []):
                        self.assertIn(item["key"], self.generated_keys(name), name)
        self.assertGreater(references, 0)
        # S3 credentials from a Secret; the webhook secrets and Redis password
        # from files in Secret volumes, never from the environment.
        upload = self.containers(self.find("Deployment", "conveyor-upload"))[0]
        env = {e["name"]: e for e in upload["env"]}
        for name in ["CONVEYOR_S3_ACCESS_KEY_ID", "CONVEYOR_S3_SECRET_ACCESS_KEY"]:
            self.assertIn("secretKeyRef", env[name].get("valueFrom", {}), name)
        webhook = self.find("Deployment", "conveyor-webhook")
        secrets_file = self.env_value(self.containers(webhook)[0],
                                      "CONVEYOR_WEBHOOK_SECRETS_FILE", None)
        self.assertEqual(("conveyor-webhook", "secrets"),
                         self.mounted_secret(webhook, self.containers(webhook)[0], secrets_file))
        orchestrator = self.find("Deployment", "conveyor-orchestrator")
        container = self.containers(orchestrator)[0]
        for variable, expected in [("CONVEYOR_REDIS_PASSWORD_FILE", ("conveyor-redis", "password")),
                                   ("CONVEYOR_TOKENS_FILE", ("conveyor-tokens", "tokens"))]:
            self.assertEqual(expected, self.mounted_secret(
                orchestrator, container, self.env_value(container, variable, None)), variable)

    def test_every_pod_mounts_its_certificate_for_the_names_it_is_dialled_by(self):
        for workload, container, stage, _, _ in self.conveyor_containers():
            where = workload["metadata"]["name"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            for variable, key in [("CONVEYOR_TLS_CERT", "tls.crt"), ("CONVEYOR_TLS_KEY", "tls.key"),
                                  ("CONVEYOR_TLS_CLIENT_CA", "ca.crt")]:
                self.assertEqual((f"conveyor-tls-{stage}", key),
                                 self.mounted_secret(workload, container, env[variable]), where)
            self.assertNotIn("CONVEYOR_INSECURE", env, where)
            if stage in STAGES:
                self.assertEqual("orchestrator", env["CONVEYOR_TLS_CLIENT_NAME"], where)
                service = f"conveyor-{stage}.{K8S_NAMESPACE}.svc.cluster.local"
                self.assertIn(service, certificate_names(
                    os.path.join(self.secrets_dir, f"{stage}.crt")), f"{stage}: certificate names")
            else:
                for variable in ["CONVEYOR_WORKER_TLS_CA", "CONVEYOR_WORKER_TLS_CERT",
                                 "CONVEYOR_WORKER_TLS_KEY"]:
                    self.assertEqual("conveyor-tls-orchestrator",
                                     self.mounted_secret(workload, container, env[variable])[0])
        redis_names = certificate_names(os.path.join(self.secrets_dir, "redis.crt"))
        self.assertIn(f"conveyor-redis.{K8S_NAMESPACE}.svc.cluster.local", redis_names)

    def test_redis_is_tls_only_with_an_acl_file_and_no_password_in_argv(self):
        statefulset = self.find("StatefulSet", "conveyor-redis")
        container = self.containers(statefulset)[0]
        args = [str(a) for a in container.get("command", []) + container.get("args", [])]
        self.assertEqual("0", args[args.index("--port") + 1])
        self.assertEqual("yes", args[args.index("--tls-auth-clients") + 1])
        self.assertNotIn("--requirepass", args)
        self.assertFalse([e for e in container.get("env", []) if "valueFrom" in e],
                         "no secret in Redis's environment")
        self.assertEqual(("conveyor-redis", "users.acl"), self.mounted_secret(
            statefulset, container, args[args.index("--aclfile") + 1]))
        self.assertEqual(("conveyor-tls-redis", "tls.crt"), self.mounted_secret(
            statefulset, container, args[args.index("--tls-cert-file") + 1]))

    def test_cert_manager_component_issues_every_generated_certificate(self):
        component_dir = os.path.join(self.dir, "cert-manager")
        with open(os.path.join(component_dir, "kustomization.yaml"), encoding="utf-8") as f:
            component = yaml.safe_load(f)
        self.assertEqual("Component", component["kind"])
        certificates = {}
        for resource in component["resources"]:
            for doc in load_yaml_documents(os.path.join(component_dir, resource)):
                if doc["kind"] == "Certificate":
                    certificates[doc["spec"]["secretName"]] = doc["spec"]
        deleted = {yaml.safe_load(p["patch"])["metadata"]["name"] for p in component["patches"]}
        for generator in self.kustomization["secretGenerator"]:
            if generator.get("type") != "kubernetes.io/tls":
                continue
            name = generator["name"]
            self.assertTrue(generator.get("options", {}).get("disableNameSuffixHash"),
                            f"{name}: a fixed name, as cert-manager writes it")
            self.assertIn(name, certificates, f"no Certificate writes {name}")
            self.assertIn(name, deleted, f"the component does not drop the generated {name}")
            spec = certificates[name]
            self.assertEqual({"server auth", "client auth"},
                             {"server auth", "client auth"} & set(spec["usages"]), name)
            self.assertEqual("Always", spec["privateKey"]["rotationPolicy"], name)
            service = name.replace("conveyor-tls-", "conveyor-")
            self.assertIn(f"{service}.{K8S_NAMESPACE}.svc.cluster.local", spec["dnsNames"], name)
        self.assertEqual("orchestrator", certificates["conveyor-tls-orchestrator"]["commonName"])

    def render(self, with_cert_manager):
        """`kubectl kustomize` of a copy of deploy/k8s with the script's secrets."""
        if shutil.which("kubectl") is None:
            self.skipTest("kubectl is not installed (optional: renders the kustomization)")
        with tempfile.TemporaryDirectory(prefix="conveyor-kustomize-") as scratch:
            tree = os.path.join(scratch, "k8s")
            shutil.copytree(self.dir, tree, ignore=shutil.ignore_patterns("secrets"))
            shutil.copytree(self.secrets_dir, os.path.join(tree, "secrets"))
            if with_cert_manager:
                with open(os.path.join(tree, "kustomization.yaml"), "a", encoding="utf-8") as f:
                    f.write("components:\n  - cert-manager\n")
            out = subprocess.run(["kubectl", "kustomize", tree], capture_output=True, text=True,
                                 timeout=120)
            self.assertEqual(0, out.returncode, out.stderr[-2000:])
            return [d for d in yaml.safe_load_all(out.stdout) if d]

    def test_kustomize_renders_and_every_secret_reference_resolves(self):
        for with_cert_manager in (False, True):
            docs = self.render(with_cert_manager)
            secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
            issued = {d["spec"]["secretName"] for d in docs if d["kind"] == "Certificate"}
            tls = {f"conveyor-tls-{s}" for s in TLS_SERVERS}
            if with_cert_manager:
                self.assertFalse(secrets & tls, "the component drops the file-made certificates")
                self.assertEqual(tls, issued - {"conveyor-ca"})
            else:
                self.assertLessEqual(tls, secrets)
                self.assertFalse(issued)
            for doc in docs:
                if doc["kind"] not in ("Deployment", "StatefulSet"):
                    continue
                text = yaml.safe_dump(doc["spec"]["template"])
                for name in re.findall(r"(?:secretName|name): (conveyor-[\w-]+)", text):
                    if name.startswith(("conveyor-tls-", "conveyor-redis-", "conveyor-tokens-",
                                        "conveyor-webhook-", "conveyor-s3-")) and \
                            "tunnel" not in name:
                        self.assertIn(name, secrets | issued, f"{doc['metadata']['name']}: {name}")

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
                self.assertIs(True, context.get("readOnlyRootFilesystem"),
                              f"{where}/{container['name']}: read-only root")
                self.assertNotIn("privileged", context, where)


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




if __name__ == "__main__":
    checks.main()
