import pytest

from registry import InvalidName, InvalidReference, Ref
from registry.domain.refs import validate_channel, validate_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("support", Ref("support")),
        ("support-summarizer:3", Ref("support-summarizer", version=3)),
        ("team/support.v2_x:12", Ref("team/support.v2_x", version=12)),
        ("support@production", Ref("support", channel="production")),
        ("support@sha256:ABCDEF012345", Ref("support", digest="abcdef012345")),
        ("  support:1 ", Ref("support", version=1)),
    ],
)
def test_parse_each_form(text: str, expected: Ref) -> None:
    assert Ref.parse(text) == expected


@pytest.mark.parametrize("text", ["support", "support:3", "support@staging", "team/x@sha256:" + "a" * 64])
def test_str_round_trips(text: str) -> None:
    assert str(Ref.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("support:x", "not a version number"),
        ("support:0", "start at 1"),
        ("support@", "nothing after"),
        ("support@sha256:abc", "at least 12 hex"),
        ("support@sha256:zzzzzzzzzzzzzz", "at least 12 hex"),
        ("Support:1", "upper-case"),
        ("a/b/c:1", "one 'namespace/'"),
        ("support@Prod", "not a channel name"),
    ],
)
def test_invalid_references_say_why_and_what_to_use(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        Ref.parse(text)
    assert fragment in str(exc.value)
    assert "NAME:N" in str(exc.value)


@pytest.mark.parametrize("name", ["a", "support-summarizer", "team/support", "x.y_z-1", "a1/b2"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("..", "'..'"),
        ("a/../b", "'..'"),
        ("a/b/c", "namespace"),
        ("Upper", "upper-case"),
        ("has space", "spaces"),
        ("-lead", None),
        ("trail-", None),
        ("a--b", None),
        ("/abs", "starts or ends"),
        ("x" * 200, "longer than"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: str, why: str | None) -> None:
    with pytest.raises(InvalidName) as exc:
        validate_name(name)
    assert "support-summarizer" in str(exc.value)  # the message shows a valid example
    if why:
        assert why in str(exc.value)


def test_channel_names_have_no_namespace() -> None:
    assert validate_channel("production") == "production"
    with pytest.raises(InvalidName):
        validate_channel("team/production")
