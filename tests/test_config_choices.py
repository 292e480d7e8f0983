"""String options are `Literal[...]` types, checked by one validator (`purerl.agent.check_choices`).

The command line refuses a value outside the choices while parsing (one line, exit 2, the choices named);
configs built in Python are refused by `check_choices`, which every agent's validation calls."""

import dataclasses
import typing

import pytest

from purerl import agents, nn
from purerl.agent import check_choices
from purerl.agents import cdsa
from purerl.cli import main as cli_main
from purerl.collect import CollectConfig
from purerl.data.cache import KINDS

CONFIGS = {**{algo: agents.get(algo).Config for algo in agents.ALGOS}, "cdsa": cdsa.Config,
           "collect": CollectConfig}


def literal_fields(cls):
    hints = typing.get_type_hints(cls)
    return [(f.name, typing.get_args(hints[f.name])) for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is typing.Literal]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_defaults_are_among_the_choices_and_every_other_value_is_refused(name):
    cls = CONFIGS[name]
    check_choices(cls())
    for field, choices in literal_fields(cls):
        for choice in choices:
            check_choices(dataclasses.replace(cls(), **{field: choice}))
        with pytest.raises(ValueError, match=f"^{field} must be one of .*, got 'bogus'$"):
            check_choices(dataclasses.replace(cls(), **{field: "bogus"}))


def test_string_options_of_the_agents_are_literals():
    """A sample of the options that were checked by hand before (now listed by `--help`)."""
    fields = {name: dict(literal_fields(cls)) for name, cls in CONFIGS.items()}
    assert fields["ppo"]["objective"] == ("clip", "dpo", "learned")
    assert fields["pmoe_ppo"]["objective"] == ("clip", "dpo", "learned")  # inherited
    assert fields["pg"]["method"] == ("pg", "npg", "npg_momentum")
    assert fields["harpg"]["method"] == ("harpg", "nharpg")
    assert fields["prdc"]["search_mode"] == ("auto", "exact", "tree", "fast")
    assert fields["prdc"]["view"] == ("", "qlearning", "exact")  # from offline.OfflineConfig
    assert fields["odice"]["f_name"] == ("chi2", "rkl")
    assert fields["cdsa"]["base"] == ("td3_bc", "iql")
    assert set(fields["sac"]["activation"]) == set(nn.ACTIVATIONS)


def test_tuple_items_and_nested_configs_are_checked():
    check_choices(CollectConfig(kinds=KINDS))
    with pytest.raises(ValueError, match="^kinds must be one of random, .*, got 'medum'$"):
        check_choices(CollectConfig(kinds=("medium", "medum")))

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: CollectConfig = CollectConfig()

    with pytest.raises(ValueError, match="^inner.expert_algo must be one of sac, ppo, got 'td3'$"):
        check_choices(Outer(CollectConfig(expert_algo="td3")))


def test_empty_choice_is_shown_quoted():
    with pytest.raises(ValueError, match="^view must be one of '', qlearning, exact, got 'flat'$"):
        check_choices(agents.get("iql").Config(view="flat"))


def test_make_agent_refuses_a_bad_choice_before_building_anything():
    with pytest.raises(ValueError, match="^activation must be one of"):
        agents.get("ppo").make_agent(agents.get("ppo").Config(activation="sigmoid"))
    with pytest.raises(ValueError, match="^router_loss must be one of mse, gumbel, reinforce, got 'l1'$"):
        agents.get("pmoe_sac").make_agent(agents.get("pmoe_sac").Config(router_loss="l1"))


@pytest.mark.parametrize("argv, flag", [
    (["train", "ppo", "--objective", "bogus"], "--objective"),
    (["train", "odice", "--f-name", "kl"], "--f-name"),
    (["train", "cdsa", "--base", "bc"], "--base"),
    (["collect", "--kinds", "medium,medum"], "--kinds"),
])
def test_command_line_refuses_a_bad_choice_in_one_line(argv, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("purerl: error: invalid choice") and flag in err, err
