"""The accelerate config files in examples/accelerate_configs parse and say what their names promise."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig


CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "accelerate_configs"


@pytest.mark.parametrize(
    "name, distributed_type, processes, machines, precision",
    [
        ("single_gpu.yaml", "NO", 1, 1, "bf16"),
        ("multi_gpu_ddp_bf16.yaml", "MULTI_GPU", 8, 1, "bf16"),
        ("fsdp.yaml", "FSDP", 8, 1, "bf16"),
        ("multi_node.yaml", "MULTI_GPU", 16, 2, "bf16"),
        ("cpu_2proc.yaml", "MULTI_GPU", 2, 1, "no"),
    ],
)
def test_accelerate_config(name, distributed_type, processes, machines, precision):
    config = ClusterConfig.from_yaml_file(str(CONFIGS / name))
    assert str(config.distributed_type).split(".")[-1] == distributed_type
    assert (config.num_processes, config.num_machines, str(config.mixed_precision).split(".")[-1]) == (
        processes,
        machines,
        precision,
    )
    if name == "fsdp.yaml":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "VideoMAELayer"
    if name == "multi_node.yaml":
        assert config.main_process_ip and config.main_process_port
