#!/usr/bin/env python3
"""deploy/k8s against the Dockerfile and each binary's --help: objects,
ports, probes, Services, targets, termination, resources and capacity.

  kubernetes_test.py --source-dir <repo> --bin-dir <build>/bin

Pod security, secrets and network policy: kubernetes_security_test.py.
"""

import os
import re

import yaml

import deploy_checks as checks
from deploy_checks import (DEFAULT_STEP_TIMEOUT_S, K8S_NAMESPACE, STAGES, BinaryHelp, accepts,
                           parse_duration_s)
from dockerfile_model import image_stage
from k8s_model import KubernetesManifests


class KubernetesTest(KubernetesManifests):
    def test_kustomization_lists_every_manifest_and_only_existing_files(self):
        listed = self.kustomization["resources"]
        for resource in listed:
            self.assertTrue(os.path.isfile(os.path.join(self.dir, resource)), resource)
        on_disk = {f for f in os.listdir(self.dir)
                   if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml"}
        self.assertEqual(on_disk, set(listed), "manifests not in kustomization.yaml")
        self.assertEqual(K8S_NAMESPACE, self.kustomization["namespace"])
        images = {i["name"] for i in self.kustomization.get("images", [])}
        used = {c["image"].split(":")[0] for w in self.workloads() for c in self.containers(w)
                if image_stage(c["image"])}
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
                if accepts(help_, name):
                    continue
                # Allowed only as a helper for $(NAME) expansion in another value.
                self.assertIn(f"$({name})", text,
                              f"{workload['metadata']['name']}: {name} unknown to {binary}")
            for arg in container.get("args", []):
                if arg.startswith("--"):
                    self.assertTrue(accepts(help_, arg.split("=")[0]), f"{binary} {arg}")

    def test_ports_and_probes_match_the_listen_port(self):
        for workload, container, stage, binary, port in self.conveyor_containers():
            where = f"{workload['metadata']['name']}/{container['name']}"
            self.assertIsNotNone(port, where)
            # The gRPC port, then the dashboard's where CONVEYOR_HTTP_LISTEN
            # turns it on.
            http = [e["value"] for e in container.get("env", [])
                    if e["name"] == "CONVEYOR_HTTP_LISTEN"]
            served = [port] + [int(h.rsplit(":", 1)[1]) for h in http]
            self.assertEqual(served, [p["containerPort"] for p in container["ports"]], where)
            for probe_kind in ("readinessProbe", "livenessProbe"):
                probe = container.get(probe_kind)
                self.assertIsNotNone(probe, f"{where}: no {probe_kind}")
                handler = probe.get("grpc") or probe.get("tcpSocket")
                self.assertIsNotNone(handler, f"{where}: {probe_kind} is not grpc/tcpSocket")
                self.assertEqual(port, self.resolve_port(container, handler["port"]),
                                 f"{where}: {probe_kind} port")
            # kubelet's gRPC probes speak plaintext only: a TLS-only server
            # is probed on its TCP port; without TLS, readiness is the real
            # grpc.health.v1 check and workers are live only while it answers.
            tls = any(e["name"] == "CONVEYOR_TLS_CERT" for e in container.get("env", []))
            kind = "tcpSocket" if tls else "grpc"
            self.assertIn(kind, container["readinessProbe"], where)
            if stage in STAGES or tls:
                self.assertIn(kind, container["livenessProbe"], where)

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
        # Redis through the pod's stunnel sidecar: plaintext to loopback only,
        # then TLS to the Redis Service, checking its certificate's name.
        redis_url = env["CONVEYOR_REDIS_URL"]["value"]
        match = re.match(r"^redis://127\.0\.0\.1:(\d+)(?:/\d+)?$", redis_url)
        self.assertIsNotNone(match, redis_url)
        conf = self.find("ConfigMap", "conveyor-redis-tunnel")["data"]["redis-client.conf"]
        self.assertIn(f"accept = 127.0.0.1:{match.group(1)}", conf.splitlines())
        connect = re.search(r"(?m)^connect = ([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local"
                            r":(\d+)$", conf)
        self.assertIsNotNone(connect, conf)
        self.assertEqual(K8S_NAMESPACE, connect.group(2))
        redis_service = self.find("Service", connect.group(1))
        self.assertEqual(int(connect.group(3)), redis_service["spec"]["ports"][0]["port"])
        self.assertIn(f"checkHost = {connect.group(1)}.{K8S_NAMESPACE}.svc.cluster.local",
                      conf.splitlines())
        pod = self.find("Deployment", "conveyor-orchestrator")["spec"]["template"]["spec"]
        tunnel = [c for c in pod["containers"] if c["name"] == "redis-tunnel"]
        self.assertEqual(1, len(tunnel), "the stunnel sidecar")
        self.assertEqual("redis-tunnel", image_stage(tunnel[0]["image"]))

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
            help_ = BinaryHelp.of(self.images[stage])
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



if __name__ == "__main__":
    checks.main()
