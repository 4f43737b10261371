"""Token secrets: shaped for secret scanners, stored only as a hash, compared in constant time."""

from __future__ import annotations

from registry.domain.tokens import ApiToken, is_token_id, looks_like_token, new_token, secret_hash, secrets_match


def test_a_new_token_has_a_scannable_secret_and_a_public_id() -> None:
    token = new_token()
    assert token.secret.startswith("adp_") and len(token.secret) == 47 and looks_like_token(token.secret)
    assert is_token_id(token.id) and token.id not in token.secret
    assert token.hash == secret_hash(token.secret) and token.secret not in token.hash
    assert len({new_token().secret for _ in range(100)}) == 100


def test_only_the_right_secret_matches_its_hash() -> None:
    token = new_token()
    assert secrets_match(token.hash, token.secret)
    assert not secrets_match(token.hash, token.secret[:-1] + ("A" if token.secret[-1] != "A" else "B"))
    assert not secrets_match(token.hash, "")


def test_shapes_that_are_not_tokens() -> None:
    for text in ["", "adp_", "adp_short", "ghp_" + "a" * 43, "adp_" + "a" * 42 + "!", " adp_" + "a" * 43]:
        assert not looks_like_token(text)


def test_a_token_is_active_until_it_expires_or_is_revoked() -> None:
    token = ApiToken(
        "tok_0123456789ab", "alice", None, "2026-01-01T00:00:00.000000Z", "admin", "2026-04-01T00:00:00.000000Z"
    )
    assert token.state("2026-03-31T23:59:59.000000Z") == "active"
    assert token.state("2026-04-01T00:00:00.000000Z") == "expired"
    revoked = ApiToken(**{**token.to_dict(), "revoked_at": "2026-02-01T00:00:00.000000Z", "revoked_by": "admin"})
    assert revoked.state("2026-01-15T00:00:00.000000Z") == "revoked"
    assert "secret" not in str(token.to_dict())
