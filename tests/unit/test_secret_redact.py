"""redact() masks every Secret made before the call, however many and in whatever order."""

from __future__ import annotations

import threading

from reconciler.secret import MASK, Secret, redact


def test_a_secret_made_after_a_redaction_is_masked_by_the_next_one() -> None:
    first = Secret("first-secret-value-0001")
    assert redact("a first-secret-value-0001 b") == f"a {MASK} b"
    second = Secret("second-secret-value-0002")  # the pattern of the first redact() is stale now
    assert redact("first-secret-value-0001 second-secret-value-0002") == f"{MASK} {MASK}"
    assert first != second


def test_hundreds_of_secrets_from_many_threads_are_all_masked() -> None:
    values = [f"stack-{i:03d}-session-token-{i * 7919:08d}" for i in range(400)]
    threads = [threading.Thread(target=Secret, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = " ".join(values)
    assert redact(text) == " ".join([MASK] * len(values))


def test_the_longest_secret_wins_where_one_contains_another() -> None:
    Secret("overlap-secret")
    Secret("overlap-secret-longer-one")
    assert redact("x overlap-secret-longer-one y") == f"x {MASK} y"
