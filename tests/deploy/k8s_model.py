#!/usr/bin/env python3
"""deploy/k8s read as kustomize reads it: the objects its kustomization lists,
their workloads and Conveyor containers, for kubernetes_*_test.py."""

import os
import unittest

import yaml

from deploy_checks import load_yaml_documents, path
from dockerfile_model import (THIRD_PARTY_IMAGES, Dockerfile, conveyor_images, image_stage,
                              listen_port)


class KubernetesManifests(unittest.TestCase):
    """deploy/k8s as kustomize would read it, for the checks that subclass it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = path("deploy", "k8s")
        with open(os.path.join(cls.dir, "kustomization.yaml"), encoding="utf-8") as f:
            cls.kustomization = yaml.safe_load(f)
        cls.objects = []
        for resource in cls.kustomization["resources"]:
            for doc in load_yaml_documents(os.path.join(cls.dir, resource)):
                cls.objects.append((resource, doc))
        cls.dockerfile = Dockerfile(path("deploy", "Dockerfile"))
        cls.images = conveyor_images(cls.dockerfile)

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
                if stage is None or stage in THIRD_PARTY_IMAGES:
                    continue
                self.assertIn(stage, self.images, f"{container['image']}: no such Dockerfile target")
                argv = self.dockerfile.entrypoint(stage) + container.get("args", [])
                yield workload, container, stage, self.images[stage], listen_port(argv)


    def containers(self, workload):
        return workload["spec"]["template"]["spec"]["containers"]

    def resolve_port(self, container, port):
        if isinstance(port, int):
            return port
        for declared in container.get("ports", []):
            if declared.get("name") == port:
                return declared["containerPort"]
        self.fail(f"container {container['name']}: no port named {port}")


    def selected_pods(self, selector):
        """Workload pod templates whose labels match `selector` (matchLabels form)."""
        pods = []
        for workload in self.workloads():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in selector.items()):
                pods.append(workload)
        return pods


    def env_value(self, container, name, default):
        for entry in container.get("env", []):
            if entry["name"] == name:
                return entry["value"]
        return default


    def secret_generators(self):
        """name -> set of keys, for every Secret the kustomization generates."""
        generated = {}
        for generator in self.kustomization.get("secretGenerator", []):
            keys = {entry.split("=", 1)[0] for entry in generator.get("files", [])}
            for env_file in generator.get("envs", []):
                keys.add(("envs", env_file))
            generated[generator["name"]] = keys
        return generated
