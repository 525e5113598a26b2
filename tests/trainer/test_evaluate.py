"""Evaluation figures by bucket: PER per age group and SNR bucket, from the decodes."""

from kidconsole.manifest import Utterance
from kidconsole.report.buckets import DEFAULT_EDGES, assign, edge_labels
from trainers.evaluate import EvalResult, bucket_pers


def _utt(i: int, age: float | None, snr: float | None) -> Utterance:
    return Utterance(id=f"u{i}", audio="", duration=1.0, sample_rate=16000, speaker=f"s{i}", split="validation",
                     text="", phones="a b c d", age=age, snr=snr)


def test_bucket_pers_follow_the_report_buckets_and_skip_empty_ones():
    rows = [_utt(0, 5.5, 12.0), _utt(1, 5.2, 25.0), _utt(2, 9.0, 25.0), _utt(3, None, None)]
    # u0 and u1 (5-6) miss one phone each of four; u2 is perfect; u3 misses all four
    hyps = ["a b c", "a b d", "a b c d", ""]
    res = EvalResult(loss=0.0, per=0.0, cer=None, wer=0.0, n=4, seconds=1.0, ids=[r.id for r in rows],
                     refs=[r.phones for r in rows], hyps=hyps)
    out = bucket_pers(rows, res)
    ages = assign(rows, "age_group").labels
    young, nine = ages[assign(rows[:1], "age_group").codes[0]], ages[assign(rows[2:3], "age_group").codes[0]]
    assert out["per_age"] == {young: 0.25, nine: 0.0, "unknown": 1.0}
    assert set(out["per_snr"]) <= set(edge_labels("snr", DEFAULT_EDGES["snr"])) | {"unknown"}
    assert out["per_snr"]["unknown"] == 1.0 and len(out["per_snr"]) == 3
