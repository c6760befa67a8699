"""The catalogue: shipped contents, lookups with close matches, user overrides, bad files named by line."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pointsman.catalog import SHIPPED_CATALOG, Catalog, load_catalog
from pointsman.config import find_toml_line, load_config
from pointsman.data import shared_data_dir
from pointsman.errors import ConfigError, NoCandidatesError, UnknownNameError


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# The shipped catalogue


ARENA_ENDPOINTS = [
    "gpt-4-1106-preview@openai",
    "gpt-4-0314@openai",
    "gpt-3.5-turbo-0613@openai",
    "gpt-3.5-turbo-1106@openai",
    "claude-1@anthropic",
    "claude-2@anthropic",
    "claude-2.1@anthropic",
    "claude-instant-1@anthropic",
]


@pytest.mark.parametrize("name", ARENA_ENDPOINTS)
def test_arena_models_are_served_by_their_makers(catalog: Catalog, name: str) -> None:
    e = catalog.endpoint(name)
    assert e.api_style == ("anthropic" if e.provider == "anthropic" else "openai")
    assert e.api_key_env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    assert e.base_url.startswith("https://")


@pytest.mark.parametrize(
    "model", ["llama-2-70b-chat", "mixtral-8x7b-instruct-v0.1", "mistral-7b-instruct-v0.1"]
)
def test_open_models_have_several_providers(catalog: Catalog, model: str) -> None:
    providers = {e.provider for e in catalog.endpoints_for_model(model)}
    assert len(providers) >= 3, providers


def test_known_prices_and_types(catalog: Catalog) -> None:
    e = catalog.endpoint("gpt-4-1106-preview@openai")
    assert e.input_usd_per_mtok == Decimal("10.0") and e.output_usd_per_mtok == Decimal("30.0")
    assert isinstance(e.input_usd_per_mtok, Decimal)
    assert isinstance(e.price_as_of, date)
    assert e.context_window == 128000 and e.max_output_tokens == 4096
    mixtral = catalog.endpoint("mixtral-8x7b-instruct-v0.1@together")
    assert mixtral.upstream_model == "mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert catalog.endpoint("codellama-34b-instruct@together").input_usd_per_mtok == Decimal("0.776")


def test_every_endpoint_says_where_its_price_came_from(catalog: Catalog) -> None:
    for e in catalog.endpoint_table.values():
        assert e.price_source, e.name
        assert e.ttft_prior_ms > 0 and e.itl_prior_ms > 0


def test_prices_match_the_shared_data_where_they_came_from_it(catalog: Catalog) -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not present (a fresh clone); prices.json cannot be compared")
    prices = json.loads((data / "prices.json").read_text())
    prices.pop("_note")
    for model, (price_in, price_out) in prices.items():
        served = catalog.endpoints_for_model(model)
        assert served, f"{model} from prices.json has no endpoint"
        from_data = [e for e in served if "prices.json" in e.price_source]
        for e in from_data:
            assert (float(e.input_usd_per_mtok), float(e.output_usd_per_mtok)) == (price_in, price_out), (
                e.name
            )


def test_local_providers_ship_disabled_and_keyless(catalog: Catalog) -> None:
    for name in ("ollama", "vllm", "llamacpp"):
        provider = catalog.provider_table[name]
        assert not provider.enabled and provider.api_key_env is None
        assert provider.base_url.startswith("http://127.0.0.1:")
        assert name not in catalog.providers
    assert all(e.provider != "ollama" for e in catalog.endpoints())
    with pytest.raises(NoCandidatesError, match=r"(?s)disabled; enable it.*\[catalog.providers.ollama\]"):
        catalog.endpoint("llama-3.1-8b-instruct@ollama")


def test_endpoints_filter_by_models_and_providers(catalog: Catalog) -> None:
    found = catalog.endpoints(models=["mixtral-8x7b-instruct-v0.1"], providers=["groq", "together", "openai"])
    assert [e.name for e in found] == [
        "mixtral-8x7b-instruct-v0.1@groq",
        "mixtral-8x7b-instruct-v0.1@together",
    ]
    skipped = catalog.endpoints(models=["mixtral-8x7b-instruct-v0.1"], skip_providers=["groq"])
    assert "mixtral-8x7b-instruct-v0.1@groq" not in [e.name for e in skipped]


# ---------------------------------------------------------------------------------------------------------
# Unknown names list close matches


def test_unknown_model_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        catalog.endpoints(models=["mixtral-8x7b-instruct"])
    assert "mixtral-8x7b-instruct-v0.1" in info.value.matches
    assert info.value.status_code == 404


def test_unknown_provider_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        catalog.endpoints(providers=["togther"])
    assert info.value.matches[0] == "together"
    with pytest.raises(UnknownNameError, match="did you mean"):
        catalog.provider("grok")


def test_unknown_endpoint_suggests_the_models_real_providers(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        catalog.endpoint("mixtral-8x7b-instruct-v0.1@anthropic")
    assert any(m.startswith("mixtral-8x7b-instruct-v0.1@") for m in info.value.matches)
    with pytest.raises(UnknownNameError) as info2:
        catalog.endpoint("gpt-4-1106-preview@opnai")
    assert "gpt-4-1106-preview@openai" in info2.value.matches


# ---------------------------------------------------------------------------------------------------------
# User overrides and additions


def test_user_adds_a_keyless_local_provider_and_endpoint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[catalog.providers.fake]
base_url = "http://127.0.0.1:9999/v1"
ttft_prior_ms = 20
itl_prior_ms = 2

[catalog.endpoints."mixtral-8x7b-instruct-v0.1@fake"]
upstream_model = "fake-mixtral"
input_usd_per_mtok = 0.01
output_usd_per_mtok = 0.02
price_as_of = 2026-01-01
""",
    )
    cat = load_catalog(path)
    e = cat.endpoint("mixtral-8x7b-instruct-v0.1@fake")
    assert e.base_url == "http://127.0.0.1:9999/v1" and e.api_key_env is None and e.api_style == "openai"
    assert e.input_usd_per_mtok == Decimal("0.01") and not e.price_verified
    assert e.context_window == 32768  # from the shipped model
    assert "fake" in cat.providers


def test_user_changes_one_price_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, '[catalog.endpoints."gpt-4-1106-preview@openai"]\ninput_usd_per_mtok = 9.5\n')
    e = load_catalog(path).endpoint("gpt-4-1106-preview@openai")
    assert e.input_usd_per_mtok == Decimal("9.5")
    assert e.output_usd_per_mtok == Decimal("30.0") and e.upstream_model == "gpt-4-1106-preview"


def test_user_enables_a_shipped_local_provider(tmp_path: Path) -> None:
    path = write(tmp_path, "[catalog.providers.ollama]\nenabled = true\n")
    cat = load_catalog(path)
    assert cat.endpoint("llama-3.1-8b-instruct@ollama").input_usd_per_mtok == 0
    assert "ollama" in cat.providers


def test_user_adds_a_new_model_with_its_own_window(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[catalog.models."my-model"]
context_window = 2048
quality_prior = 0.4

[catalog.endpoints."my-model@together"]
upstream_model = "me/my-model"
input_usd_per_mtok = 0.1
output_usd_per_mtok = 0.1
price_as_of = 2026-01-01
""",
    )
    cat = load_catalog(path)
    assert cat.endpoint("my-model@together").context_window == 2048
    assert cat.model("my-model").quality_prior == 0.4


# ---------------------------------------------------------------------------------------------------------
# Bad files are rejected with a message naming the file and the line


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[catalog.providers.fake]\nbase_url = "http://x"\nttft_prior_ms = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert str(path) in info.value.message and "line 3" in info.value.message


def test_misspelt_field_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '# my overrides\n\n[catalog.endpoints."gpt-4-1106-preview@openai"]\ninput_usd_per_mtok = 9\noutput_usd_per_mtk = 20\n',
    )
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    message = info.value.message
    assert f"{path}, line 5" in message and "output_usd_per_mtk" in message and "spelling" in message


def test_bad_value_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[catalog.providers.fake]\nbase_url = "ftp://nope"\nttft_prior_ms = 1\nitl_prior_ms = 1\n',
    )
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert f"{path}, line 2" in info.value.message and "http://" in info.value.message


def test_negative_price_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '\n[catalog.endpoints."claude-2@anthropic"]\n\ninput_usd_per_mtok = -1\n')
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert f"{path}, line 4" in info.value.message


def test_endpoint_on_unknown_provider_names_its_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[catalog.endpoints."claude-2@nowhere"]\nupstream_model = "x"\ninput_usd_per_mtok = 1\n'
        "output_usd_per_mtok = 1\nprice_as_of = 2026-01-01\n",
    )
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert f"{path}, line 1" in info.value.message and "[providers.nowhere]" in info.value.message


def test_new_endpoint_missing_a_required_field_names_its_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'x = 1\n[catalog]\n[catalog.endpoints."claude-2@groq"]\nupstream_model = "c"\n')
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert f"{path}, line 3" in info.value.message and "input_usd_per_mtok" in info.value.message


def test_unknown_catalog_table_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "\n[catalog.endpoint.x]\na = 1\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert f"{path}, line 2" in info.value.message and "expected one of" in info.value.message


def test_missing_config_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_catalog(tmp_path / "absent.toml")


def test_bad_shipped_catalogue_is_named(tmp_path: Path) -> None:
    text = SHIPPED_CATALOG.read_text().replace("context_window = 128000", "context_window = -5", 1)
    shipped = write(tmp_path, text, "catalog.toml")
    expected_line = text.splitlines().index("context_window = -5") + 1
    with pytest.raises(ConfigError) as info:
        load_catalog(shipped=shipped)
    assert f"{shipped}, line {expected_line}" in info.value.message


def test_config_section_validation_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[routing]\ndefault_routr = "router@q:1"\n')
    with pytest.raises(ConfigError) as info:
        _ = load_config(path).routing
    assert f"{path}, line 2" in info.value.message
    ok = write(tmp_path, '[routing]\ndefault_router = "router@q:1"\n', "ok.toml")
    assert load_config(ok).routing.default_router == "router@q:1"


def test_find_toml_line_handles_quoted_and_dotted_keys() -> None:
    text = '[a]\nb = 1\n[a."x.y"]\nc.d = 2\n\n[[e]]\nf = 3\n'
    assert find_toml_line(text, ("a", "b")) == 2
    assert find_toml_line(text, ("a", "x.y")) == 3
    assert find_toml_line(text, ("a", "x.y", "c", "d")) == 4
    assert find_toml_line(text, ("a", "x.y", "missing")) == 3
    assert find_toml_line(text, ("e", "f")) == 7
    assert find_toml_line(text, ("zzz",)) is None


def test_shipped_error_is_not_blamed_on_a_user_file_that_only_opens_catalog(tmp_path: Path) -> None:
    text = SHIPPED_CATALOG.read_text().replace("context_window = 128000", "context_window = -5", 1)
    shipped = write(tmp_path, text, "catalog.toml")
    user = write(tmp_path, "[catalog]\n[catalog.providers.openai]\nttft_prior_ms = 400\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(user, shipped=shipped)
    assert str(shipped) in info.value.message and str(user) not in info.value.message


def test_model_without_endpoints_and_disabled_only_models(tmp_path: Path) -> None:
    path = write(tmp_path, '[catalog.models."lonely"]\ncontext_window = 100\n')
    cat = load_catalog(path)
    with pytest.raises(UnknownNameError, match="unknown endpoint for model 'lonely'"):
        cat.endpoints_for_model("lonely")
    only_local = write(
        tmp_path,
        '[catalog.endpoints."house@ollama"]\nupstream_model = "h"\ncontext_window = 4096\n'
        "input_usd_per_mtok = 0\noutput_usd_per_mtok = 0\nprice_as_of = 2026-01-01\n",
        "local.toml",
    )
    with pytest.raises(NoCandidatesError, match=r"only served by disabled providers \(ollama\)"):
        load_catalog(only_local).endpoints_for_model("house")
