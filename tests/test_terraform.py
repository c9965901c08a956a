"""egress.tf and removals.sh checked by real Terraform and the real AWS CLI against moto's EC2 server.

The end-to-end test is the fixed point proven through the tools a user runs: create the sample estate in
moto, generate its flows for moto's ids, recommend, `terraform plan` (exactly the expected imports and
creates), `terraform apply`, run removals.sh as its header tells users to, collect the inventory again and
re-run the analysis on it with the same flows: no further changes. Descriptions are ignored (moto drops
some), as DESIGN §8 says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from sgadvisor.analysis.recommend import AnalysisOptions, Scope
from sgadvisor.flowlogs.ingest import IngestOptions
from sgadvisor.models import Recommendation
from sgadvisor.pipeline import RecommendInputs, recommend
from sgadvisor.render import OutputFormat, RenderContext, render_all
from tests.conftest import IN_CI, REPO

REGION = "eu-west-1"


@dataclass(frozen=True)
class TerraformTool:
    binary: Path
    plugin_dir: Path
    env: dict[str, str]

    def run(self, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"terraform {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def init(self, cwd: Path) -> None:
        self.run(cwd, "init", "-input=false", "-no-color", f"-plugin-dir={self.plugin_dir}")


def _locate_terraform() -> tuple[Path, Path] | str:
    """(terraform, provider mirror) from .ci/run's variables, else from the usual places; or why not."""
    binary = os.environ.get("SGADVISOR_TERRAFORM") or shutil.which("terraform")
    mirror = os.environ.get("SGADVISOR_TF_PLUGIN_DIR")
    if not mirror:
        found = sorted(Path("/opt").glob("*/registry.terraform.io/hashicorp/aws"))
        mirror = str(found[0].parents[2]) if found else None
    if not binary:
        return "terraform is not installed (.ci/run passes SGADVISOR_TERRAFORM)"
    if not mirror or not (Path(mirror) / "registry.terraform.io").is_dir():
        return "no hashicorp/aws provider mirror (.ci/run passes SGADVISOR_TF_PLUGIN_DIR)"
    return Path(binary), Path(mirror)


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> TerraformTool:
    located = _locate_terraform()
    if isinstance(located, str):
        if IN_CI:
            pytest.fail(f"{located}; CI must provide it")
        pytest.skip(located)
    binary, mirror = located
    config = tmp_path_factory.mktemp("tfrc") / "terraformrc"
    config.write_text("# sgadvisor tests: no plugin cache, no credentials helpers\n")
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
    return TerraformTool(binary, mirror, env)


def _providers_tf(endpoint: str = "http://127.0.0.1:1") -> str:
    return f"""provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = false

  endpoints {{
    ec2 = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
"""


def _write_rendered(recommendation: Recommendation, directory: Path) -> None:
    rendered = render_all(recommendation, [OutputFormat.TERRAFORM], RenderContext())
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.files.items():
        (directory / name).write_text(text)


# -------------------------------------------------------------------------------- validate and fmt


def test_generated_terraform_is_canonical_and_valid(
    terraform: TerraformTool, sample_recommendation: Recommendation, tmp_path: Path
) -> None:
    _write_rendered(sample_recommendation, tmp_path)
    terraform.run(tmp_path, "fmt", "-check", "-diff", "-no-color")  # canonical before providers.tf exists
    (tmp_path / "providers.tf").write_text(_providers_tf())
    terraform.init(tmp_path)
    terraform.run(tmp_path, "validate", "-no-color")


def test_hostile_descriptions_stay_literal_strings(
    terraform: TerraformTool, sample_recommendation: Recommendation, tmp_path: Path
) -> None:
    """A description with HCL template syntax, quotes and backslashes must not become an expression:
    unescaped, ``${var.x}`` would fail validation (undeclared variable) or worse, read a value."""
    hostile = 'it"s ${var.secret} %{ if true }x%{ endif } back\\slash\nnewline'
    groups = []
    for group in sample_recommendation.security_groups:
        proposed = [r.model_copy(update={"description": hostile}) for r in group.proposed_egress]
        groups.append(group.model_copy(update={"proposed_egress": proposed}))
    _write_rendered(sample_recommendation.model_copy(update={"security_groups": groups}), tmp_path)
    (tmp_path / "providers.tf").write_text(_providers_tf())
    terraform.init(tmp_path)
    terraform.run(tmp_path, "validate", "-no-color")
    text = (tmp_path / "egress.tf").read_text()
    assert "$${var.secret}" in text and "%%{ if true }" in text and '\\"s' in text


# ----------------------------------------------------------------------------- egress-domains.tf

_REQUIRED_PROVIDERS = """terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}
"""


def _validate(terraform: TerraformTool, directory: Path) -> None:
    terraform.init(directory)
    terraform.run(directory, "validate", "-no-color")


@pytest.mark.parametrize("action", ["ALERT", "BLOCK"])
def test_egress_domains_validates_alone_and_beside_egress_tf(
    terraform: TerraformTool, tmp_path: Path, action: Literal["ALERT", "BLOCK"]
) -> None:
    """egress-domains.tf is self-contained (hashicorp/aws implied by its resource types, no provider
    block), canonical, and declares nothing that clashes with egress.tf or with a user's own
    required_providers (a module may declare them only once)."""
    from tests.test_egress_domains import dns_recommendation

    files = render_all(dns_recommendation(action=action), [OutputFormat.TERRAFORM], RenderContext()).files
    domains = files["egress-domains.tf"]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "egress-domains.tf").write_text(domains)
    terraform.run(alone, "fmt", "-check", "-diff", "-no-color")
    _validate(terraform, alone)
    together = tmp_path / "together"
    _write_rendered(dns_recommendation(action=action), together)
    assert {p.name for p in together.iterdir()} == {"egress.tf", "removals.sh", "egress-domains.tf"}
    terraform.run(together, "fmt", "-check", "-diff", "-no-color")
    _validate(terraform, together)
    (together / "providers.tf").write_text(_REQUIRED_PROVIDERS + _providers_tf())
    _validate(terraform, together)


def test_egress_domains_with_hostile_and_many_names_validates(
    terraform: TerraformTool, tmp_path: Path
) -> None:
    """Names with quotes, template syntax, newlines and CI commands are left out (comments only), and
    2,345 names are split into domain lists of at most 1,000: the file still formats and validates."""
    from sgadvisor.models import DomainAllowlist
    from tests.test_egress_domains import HOSTILE_NAMES, VPC, dns_recommendation

    names = [f"host{i:04d}.example" for i in range(2345)] + HOSTILE_NAMES
    allowlists = [
        DomainAllowlist(vpc_id=VPC, domains=names, cname_targets=["edge.cdn.example", *HOSTILE_NAMES]),
        DomainAllowlist(vpc_id='vpc-"${var.x}', domains=["ok.example"], cname_targets=[]),
    ]
    _write_rendered(dns_recommendation(allowlists=allowlists), tmp_path)
    terraform.run(tmp_path, "fmt", "-check", "-diff", "-no-color")
    _validate(terraform, tmp_path)
    text = (tmp_path / "egress-domains.tf").read_text()
    assert 'vpc_id                 = "vpc-\\"$${var.x}"' in text


def test_egress_domains_use_what_the_local_provider_supports(
    terraform: TerraformTool, tmp_path: Path
) -> None:
    """The attributes written exist in the mirror's hashicorp/aws schema (firewall_domain_redirection_action
    arrived in 5.x releases of mid-2024)."""
    (tmp_path / "main.tf").write_text(
        'resource "aws_route53_resolver_firewall_rule_group" "x" {\n  name = "x"\n}\n'
    )
    terraform.init(tmp_path)
    schema = json.loads(terraform.run(tmp_path, "providers", "schema", "-json").stdout)
    provider = schema["provider_schemas"]["registry.terraform.io/hashicorp/aws"]["resource_schemas"]
    rule = provider["aws_route53_resolver_firewall_rule"]["block"]["attributes"]
    assert {"firewall_domain_redirection_action", "block_response", "priority", "action"} <= set(rule)
    association = provider["aws_route53_resolver_firewall_rule_group_association"]["block"]["attributes"]
    assert {"vpc_id", "priority", "firewall_rule_group_id", "name"} <= set(association)


# ------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is a test dependency")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _ec2(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.slow
def test_apply_then_removals_reach_the_fixed_point(
    terraform: TerraformTool, moto_endpoint: str, tmp_path: Path
) -> None:
    from tests.standins.moto_estate import create_estate, sample_history, write_sample_snapshot
    from tests.standins.sample_estate import build_estate, generate

    ec2 = _ec2(moto_endpoint)
    estate = build_estate()
    id_map = create_estate(ec2, estate)
    generate(tmp_path / "sample", id_map)
    flows = tmp_path / "sample" / "flows"
    vpc_id = id_map[estate.vpc.vpc_id]
    # The churning groups are judged over their former members' lives: the ENI history, fetched from
    # the Config/CloudTrail stand-in as AWS mode would.
    history = sample_history(ec2, tmp_path / "sample", vpc_id)

    def snapshot(name: str) -> Path:
        return write_sample_snapshot(ec2, estate, id_map, tmp_path / name, history)

    def analyse(inventory: Path) -> Recommendation:
        return recommend(
            RecommendInputs(
                flows=(flows,),
                inventory=(inventory,),
                ingest=IngestOptions(),
                # moto adds a default VPC whose groups are not the sample's: analyse the sample VPC only.
                analysis=AnalysisOptions(scope=Scope(vpcs=frozenset({vpc_id}))),
            )
        )

    before = analyse(snapshot("before"))
    actions = [c.action for g in before.security_groups for c in g.changes]
    assert {"keep", "add", "remove", "narrow"} <= set(actions), "the sample must exercise every change"

    work = tmp_path / "tf"
    rendered = render_all(before, [OutputFormat.TERRAFORM], RenderContext())
    work.mkdir()
    for name, text in rendered.files.items():
        (work / name).write_text(text)
    (work / "providers.tf").write_text(_providers_tf(moto_endpoint))
    terraform.init(work)
    terraform.run(work, "plan", "-input=false", "-no-color", "-out=tfplan")
    plan = json.loads(terraform.run(work, "show", "-json", "tfplan").stdout)
    _assert_plan_matches(plan, before)

    terraform.run(work, "apply", "-input=false", "-no-color", "tfplan")
    _run_removals(work / "removals.sh", moto_endpoint)

    after = analyse(snapshot("after"))
    for group in after.security_groups:
        moving = [(c.action, c.rule.key()) for c in group.changes if c.action != "keep"]
        assert not moving, f"{group.group_id} ({group.group_name}) is not at the fixed point: {moving}"
    proposed_before = {g.group_id: {r.key() for r in g.proposed_egress} for g in before.security_groups}
    current_after = {g.group_id: {r.key() for r in g.current_egress} for g in after.security_groups}
    assert current_after == proposed_before


def _assert_plan_matches(plan: dict[str, Any], recommendation: Recommendation) -> None:
    """Imports = the kept rules (by sgr id), creates = the added rules, nothing destroyed; an imported
    rule may only change its description (moto drops descriptions on SG-reference and prefix-list rules)."""
    expected_imports = {
        r.security_group_rule_id
        for g in recommendation.security_groups
        for r in g.proposed_egress
        if r.security_group_rule_id
    }
    expected_creates = sum(1 for g in recommendation.security_groups for c in g.changes if c.action == "add")
    imports, creates = set(), 0
    for change in plan["resource_changes"]:
        actions = change["change"]["actions"]
        importing = change["change"].get("importing")
        if importing:
            imports.add(importing["id"])
            assert actions in (["no-op"], ["update"]), (change["address"], actions)
            if actions == ["update"]:
                before, after = change["change"]["before"], change["change"]["after"]
                changed = {k for k in after if before.get(k) != after.get(k)} - {"tags_all"}
                assert changed <= {"description"}, (change["address"], changed)
        else:
            assert actions == ["create"], (change["address"], actions)
            creates += 1
    assert imports == expected_imports
    assert creates == expected_creates


def _run_removals(script: Path, endpoint: str) -> None:
    """``sh removals.sh`` with the AWS CLI of this environment, pointed at moto the standard way."""
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        found = shutil.which("aws")
        assert found, "the AWS CLI (awscli, a test dependency) is missing"
        aws = Path(found)
    env = {
        **os.environ,
        "PATH": f"{aws.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
    }
    env.pop("AWS_PROFILE", None)
    result = subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"removals.sh failed:\n{result.stdout}\n{result.stderr}"


def test_sample_has_removals_to_run(sample_recommendation: Recommendation) -> None:
    script = render_all(sample_recommendation, [OutputFormat.TERRAFORM], RenderContext()).files["removals.sh"]
    assert script.startswith("#!/bin/sh\n")
    assert "aws ec2 revoke-security-group-egress" in script
    assert REPO.exists()
