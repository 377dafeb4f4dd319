"""cluster.yaml parses and has what the Ray cluster launcher needs."""

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
