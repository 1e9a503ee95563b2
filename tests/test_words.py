"""course_utils.support.words: messages in the words of the tool in use (a flag on the
command line, a keyword in Python) and the one did-you-mean of every name lookup."""

from pathlib import Path

import pytest

from course_utils import recipes, zoo
from course_utils.support import words


@pytest.mark.parametrize(
    ("keyword", "value", "python", "command_line"),
    [
        ("overwrite", True, "overwrite=True", "--overwrite"),
        ("check_counts", False, "check_counts=False", "--no-check-counts"),
        ("source", "../x.tar.gz", "source='../x.tar.gz'", "--data ../x.tar.gz"),
        ("source", Path("my copy"), "source='my copy'", "--data 'my copy'"),
        ("grad_clip", 1.0, "grad_clip=1.0", "--grad-clip 1.0"),
    ],
)
def test_an_argument_is_named_as_the_tool_in_use_names_it(keyword, value, python, command_line):
    assert words.arg(keyword, value) == python
    with words.command_line():
        assert words.arg(keyword, value) == command_line
        assert words.in_command_line()
    assert words.arg(keyword, value) == python and not words.in_command_line()


def test_a_bare_name_a_chosen_flag_and_free_wording():
    assert (words.arg("out"), words.arg("batch_size")) == ("out", "batch_size")
    assert words.pick("--study NAME", "open_study(name=...)") == "open_study(name=...)"
    with words.command_line():
        assert (words.arg("out"), words.arg("batch_size")) == ("--out", "--batch-size")
        assert words.arg("name", "s", flag="--study") == "--study s"
        assert words.pick("--study NAME", "open_study(name=...)") == "--study NAME"


def test_the_context_is_left_even_when_the_command_fails():
    with pytest.raises(RuntimeError), words.command_line():
        raise RuntimeError("a failed command")
    assert not words.in_command_line()


@pytest.mark.parametrize(
    ("name", "choices", "nearest"),
    [
        ("fast49", recipes.RECIPES, "fast94"),
        ("Wang", recipes.RECIPES, "wang"),
        ("resnet-18", zoo.REPORTS, "resnet18"),
        ("RESNET_18", zoo.REPORTS, "resnet18"),
        ("adamm", ("sgd", "adam", "adamw"), "adam"),
        ("imagenet", recipes.RECIPES, None),
        (["crop"], ("crop", "flip"), None),  # not a name at all
    ],
)
def test_the_did_you_mean_forgives_case_dashes_and_typos(name, choices, nearest):
    assert words.closest(name, choices) == nearest


def test_every_name_lookup_says_unknown_in_one_form():
    assert words.unknown("recipe", "Wang", ("fast94", "wang")) == (
        "unknown recipe 'Wang'; did you mean 'wang'? choose one of: fast94, wang."
    )
    assert words.unknown("pruner", "zzz", ("median", "none")) == (
        "unknown pruner 'zzz'; choose one of: median, none."
    )
    for lookup, what in ((recipes.get_recipe, "recipe"), (zoo.build, "zoo model")):
        with pytest.raises(KeyError) as caught:
            lookup("Wang")
        assert str(caught.value).startswith(f"unknown {what} 'Wang'; did you mean 'wang'? ")
