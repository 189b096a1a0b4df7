"""The chart values other parts read (docs/contracts.md: the Envoy renderer of the lab, the
cluster demos) exist in charts/webgatos/values.yaml with exactly the documented defaults."""

import re

import chartlib
import yaml


def contract_values() -> dict:
    text = (chartlib.REPO_ROOT / "docs" / "contracts.md").read_text()
    section = text[text.index("## Chart values that other parts read"):]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S)[1])


def leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_contract_keys_have_the_documented_defaults():
    defaults = dict(leaves(chartlib.chart_values(chartlib.Scenario("webgatos", "defaults"))))
    contract = dict(leaves(contract_values()))
    assert len(contract) > 30
    mismatched = {key: (value, defaults.get(key, "<missing>")) for key, value in contract.items()
                  if defaults.get(key, "<missing>") != value}
    assert not mismatched, f"contract default != chart default: {mismatched}"
