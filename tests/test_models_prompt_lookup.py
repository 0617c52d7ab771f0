"""Prompt-lookup drafts and their greedy replay (pure functions on token ids)."""

from inboxrl.models.prompt_lookup import draft, replay


def test_draft_copies_what_followed_the_last_bigram_first_match_from_the_left():
    ids = [5, 1, 2, 3, 4, 9, 1, 2, 7, 8, 1, 2]
    assert draft(ids, 3) == [3, 4, 9]  # the first earlier "1 2" wins, as in transformers
    assert draft([4, 5, 6], 3) == []  # never seen
    assert draft([7, 1, 9, 1], 2) == [9, 1]  # falls back to a unigram


def test_replay_counts_passes_and_acceptance_of_a_copied_answer():
    context = [10, 11, 12, 13, 14, 15, 16]
    copied = replay(context, [12, 13, 14, 15, 16], num_tokens=4)
    # "12" comes from a plain pass (the context's last n-grams occur nowhere earlier); then 13 14 15 are drafted
    # after "12" and accepted, and the verifying pass yields 16: 5 tokens in 2 passes.
    assert copied.tokens == 5 and copied.passes == 2 and copied.accepted == 3 and copied.acceptance == 1.0
    fresh = replay(context, [1, 2, 3], num_tokens=4)
    assert fresh.passes == 3 and fresh.accepted == 0
    assert fresh.tokens_per_pass == 1.0
