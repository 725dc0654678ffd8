"""deploy/kubernetes/: the manifests parsed (python3-yaml) and held to the configuration
they mount: the probes' paths and ports and the Prometheus scrape port are those of the
admin listener (metrics.listen) of the ConfigMap's llmgate.yaml, the container and Service
ports that of its listen address, the secret files under the Secret's mount, the state dir
on a volume; and `llmgate --check-config` accepts that configuration with the example
Secret's values as files."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import LLMGATE_BIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "kubernetes")

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return yaml.safe_load(f)


def port_of(hostport):
    return int(hostport.rsplit(":", 1)[1])


@unittest.skipIf(yaml is None, "python3-yaml is not installed (apt-get install python3-yaml)")
class KubernetesTest(unittest.TestCase):
    def setUp(self):
        self.dep = load("deployment.yaml")
        self.cm = load("configmap.yaml")
        self.secret = load("secret.example.yaml")
        self.config_text = self.cm["data"]["llmgate.yaml"]
        self.config = yaml.safe_load(self.config_text)
        self.pod = self.dep["spec"]["template"]
        self.c = self.pod["spec"]["containers"][0]
        self.ports = {p["name"]: p["containerPort"] for p in self.c["ports"]}
        self.env = {e["name"]: e for e in self.c.get("env", [])}
        self.volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        self.mounts = {m["name"]: m for m in self.c["volumeMounts"]}

    def resolve(self, port):
        return self.ports[port] if isinstance(port, str) else port

    def test_kinds(self):
        self.assertEqual(self.dep["kind"], "Deployment")
        self.assertEqual(self.dep["spec"]["replicas"], 3)
        self.assertEqual(load("service.yaml")["kind"], "Service")
        self.assertEqual(load("pdb.yaml")["kind"], "PodDisruptionBudget")
        self.assertEqual(load("hpa.yaml")["kind"], "HorizontalPodAutoscaler")
        listed = load("kustomization.yaml")["resources"]
        self.assertEqual(sorted(listed), sorted(
            f for f in os.listdir(K8S) if f.endswith(".yaml") and f not in (
                "kustomization.yaml", "secret.example.yaml")))

    def test_probes_and_scrape_on_the_admin_listener(self):
        admin = port_of(self.config["metrics"]["listen"])
        self.assertTrue(self.config["metrics"]["listen"].startswith("0.0.0.0:"),
                        "the kubelet and Prometheus reach the pod from outside")
        live, ready = self.c["livenessProbe"]["httpGet"], self.c["readinessProbe"]["httpGet"]
        self.assertEqual(live["path"], "/health")
        self.assertEqual(ready["path"], "/health/full")
        self.assertEqual(self.resolve(live["port"]), admin)
        self.assertEqual(self.resolve(ready["port"]), admin)
        ann = self.pod["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(int(ann["prometheus.io/port"]), admin)
        self.assertEqual(ann["prometheus.io/path"], "/metrics")

    def test_service_port_is_the_listen_port(self):
        listen = self.config["listen"]
        listen = listen if isinstance(listen, list) else [listen]
        self.assertEqual(self.ports["http"], port_of(listen[0]))
        svc = load("service.yaml")
        self.assertEqual(svc["spec"]["selector"], self.dep["spec"]["selector"]["matchLabels"])
        self.assertEqual(self.resolve(svc["spec"]["ports"][0]["targetPort"]), port_of(listen[0]))

    def test_config_and_secrets_mounted(self):
        args = self.c["args"]
        cfg_path = args[args.index("--config") + 1]
        m = self.mounts["config"]
        self.assertEqual(self.volumes["config"]["configMap"]["name"], self.cm["metadata"]["name"])
        self.assertEqual(os.path.join(os.path.dirname(m["mountPath"]), m["subPath"]), cfg_path)
        creds = self.env["CREDENTIALS_DIRECTORY"]["value"]
        self.assertEqual(self.mounts["keys"]["mountPath"], creds)
        self.assertEqual(self.volumes["keys"]["secret"]["secretName"],
                         self.secret["metadata"]["name"])
        for p in self.config["providers"]:
            for k in p["keys"]:
                f = k["secret_file"]
                self.assertTrue(f.startswith("${CREDENTIALS_DIRECTORY}/"), f)
                self.assertIn(f.split("/", 1)[1], self.secret["stringData"], f)
        for ck in self.config.get("client_keys", []):
            if "secret_env" in ck:
                ref = self.env[ck["secret_env"]]["valueFrom"]["secretKeyRef"]
                self.assertEqual(ref["name"], self.secret["metadata"]["name"])
                self.assertIn(ref["key"], self.secret["stringData"])

    def test_non_root_read_only_state_on_a_volume(self):
        sc, psc = self.c["securityContext"], self.pod["spec"]["securityContext"]
        self.assertTrue(psc["runAsNonRoot"])
        self.assertNotEqual(psc["runAsUser"], 0)
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        state = self.config["state_dir"]
        mount = self.mounts["state"]["mountPath"]
        self.assertTrue(state.startswith(mount + "/"),
                        f"state_dir {state} must be a directory inside the volume at {mount}")
        self.assertIn("emptyDir", self.volumes["state"])
        self.assertIn("resources", self.c)
        self.assertIn("limits", self.c["resources"])

    def test_pdb_and_hpa(self):
        pdb, hpa = load("pdb.yaml"), load("hpa.yaml")
        labels = self.pod["metadata"]["labels"]
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"], labels)
        self.assertLess(pdb["spec"]["minAvailable"], self.dep["spec"]["replicas"])
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], self.dep["metadata"]["name"])
        self.assertEqual(hpa["spec"]["minReplicas"], self.dep["spec"]["replicas"])

    def test_config_is_valid(self):
        tmp = tempfile.mkdtemp(prefix="llmgate-k8s-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name, value in self.secret["stringData"].items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(value)
        cfg = os.path.join(tmp, "llmgate.yaml")
        with open(cfg, "w") as f:
            f.write(self.config_text)
        env = dict(os.environ, CREDENTIALS_DIRECTORY=tmp)
        for name, e in self.env.items():
            if "valueFrom" in e:
                env[name] = self.secret["stringData"][e["valueFrom"]["secretKeyRef"]["key"]]
        p = subprocess.run([LLMGATE_BIN, "--check-config", cfg], capture_output=True, text=True,
                           env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
