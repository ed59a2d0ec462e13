"""The chaos instrument's arithmetic: what counts as a duplicate and as a loss."""

from tests.instrument import count, duplicates_among, faults_injected


def call(n, received, answered, accepted, target="t", create=True):
    return {"n": n, "received_at": received, "answered_at": answered, "accepted": accepted,
            "target": target, "create": create}


def test_one_accepted_call_is_no_duplicate():
    assert duplicates_among([call(1, 0, 1, True)]) == 0


def test_refusals_and_faults_before_the_acceptance_are_no_duplicates():
    calls = [call(1, 0, 0.1, False), call(2, 1, 1.1, False), call(3, 2, 2.5, True)]
    assert duplicates_among(calls) == 0


def test_a_call_after_the_acceptance_is_a_duplicate_even_when_the_platform_refused_it():
    calls = [call(1, 0, 1, True), call(2, 3, 3.1, False)]  # e.g. Weibo's 20019 repeat
    assert duplicates_among(calls) == 1


def test_two_accepted_calls_are_a_duplicate_however_they_overlapped():
    assert duplicates_among([call(1, 0, 5, True), call(2, 1, 2, True)]) == 1


def test_a_refused_call_that_overlapped_the_acceptance_is_no_duplicate():
    assert duplicates_among([call(1, 0, 5, True), call(2, 1, 6, False)]) == 0


def test_only_create_calls_count():
    assert duplicates_among([call(1, 0, 1, True), call(2, 3, 4, False, create=False)]) == 0


def test_count_reports_losses_per_release_and_channel_across_legs():
    def target_of(entry):
        return None if entry["target"] == "?" else tuple(entry["target"].split("/"))

    calls = [call(1, 0, 1, True, "feed/1/sftp"), call(2, 0, 1, True, "feed/1/email"),
             call(3, 0, 1, True, "feed/2/sftp"), call(4, 2, 3, False, "feed/2/sftp"),
             call(5, 0, 1, False, "?")]
    expected = [("feed", "1", "sftp"), ("feed", "1", "email"),
                ("feed", "2", "sftp"), ("feed", "2", "email")]
    found = count(calls, expected, target_of)
    assert (found.delivered, found.lost, found.duplicates, found.unattributed) == (1, 1, 1, 1)
    assert found.missing == [("feed", "2", "email")]
    assert found.duplicated == {("feed", "2", "sftp"): 1}


def test_faults_injected_counts_each_sandboxes_log():
    logs = {"weibo": [{"fault": "drop"}, {"fault": "drop"}], "smtp": [{"fault": "status"}]}
    assert faults_injected(logs) == {"smtp:status": 1, "weibo:drop": 2}
