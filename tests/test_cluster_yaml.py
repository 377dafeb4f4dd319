"""cluster.yaml parses and has what the Ray cluster launcher needs."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_has_launcher_fields():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    for key in ("cluster_name", "max_workers", "provider", "auth", "available_node_types", "head_node_type",
                "setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in config, key
    assert config["provider"]["type"] in ("aws", "gcp", "azure", "kubernetes")
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes
    workers = [n for n in nodes if n != config["head_node_type"]]
    assert workers and all(nodes[n]["max_workers"] <= config["max_workers"] for n in workers)
    assert nodes[config["head_node_type"]]["resources"].get("CPU") == 0  # no training on the head
    assert any("pip install" in c and "hybrid-scaling" in c for c in config["setup_commands"])
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])


def test_cluster_yaml_passes_rays_own_schema():
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    validate_config(fillout_defaults(yaml.safe_load((ROOT / "cluster.yaml").read_text())))  # raises if invalid


def _ray_starts(config: dict) -> list[str]:
    return [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[key]
            if "ray start" in c]


def test_cluster_keeps_token_authentication_on():
    """Ray's token auth stays on for every node: never RAY_AUTH_MODE=disabled, and every node holds the token."""
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    every_command = [c for key, value in config.items() if key.endswith("_commands") for c in value]
    assert not [c for c in every_command if re.search(r"RAY_AUTH_MODE=\W*disabled", c, re.I)]
    starts = _ray_starts(config)
    assert len(starts) == 2 and all(re.search(r"\bRAY_AUTH_MODE=token\b", c) for c in starts), starts
    assert "~/.ray/auth_token" in config["file_mounts"]  # the same token on the head and the workers


def test_dashboard_listens_on_localhost_only():
    """The dashboard (the job-submission endpoint) is reached through `ray dashboard`'s SSH tunnel."""
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    for command in _ray_starts(config):
        hosts = re.findall(r"--dashboard-host[= ]+(\S+)", command)
        assert all(h.strip("'\"") in ("127.0.0.1", "localhost") for h in hosts), command
    head = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert head and all("--dashboard-host=127.0.0.1" in c for c in head)
    text = (ROOT / "cluster.yaml").read_text()
    assert "ray dashboard cluster.yaml" in text and "--address http://127.0.0.1:8265" in text
