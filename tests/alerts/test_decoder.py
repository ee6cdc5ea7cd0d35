"""The decoder process gives what ``decode_findings`` gives, in order; when it dies, the caller is
told so and decodes the payloads itself (nothing waits for a result that will not come)."""

from __future__ import annotations

import orjson

from sitewatch.alerts.decoder import Decoder
from sitewatch.contract import FindingState, Limits, decode_findings, encode_findings, finding_topic

from .conftest import finding


def test_the_decoder_process_decodes_as_decode_findings_does_in_order() -> None:
    topic = finding_topic("C0001")
    good = [
        finding(f"C0001-EL{n:04d}", score=0.5 + n, evidence={"x": 1.5}, params={"device": "d", "n": n})
        for n in range(1, 4)
    ]
    good.append(finding("C0001-EL0009", state=FindingState.CLEARED))
    batch = encode_findings("C0001", good)
    body = orjson.loads(batch)
    body["findings"].insert(1, {**body["findings"][0], "kind": "toaster"})  # one bad element
    mixed = orjson.dumps(body)
    payloads = [batch, good[0].encode(), mixed, b"{not json", batch]
    decoder = Decoder(Limits())
    try:
        results = []
        for payload in payloads:  # one at a time: a full pipe waits for its reader
            assert decoder.send(topic, payload)
            results.append(decoder.receive())
        for payload, result in zip(payloads, results, strict=True):
            assert result == decode_findings(topic, payload)
        assert results[0] is not None and results[0].message == tuple(good)
        assert results[2] is not None and [r.reason for r in results[2].rejections] == ["unknown_kind"]
        assert results[3] is not None and results[3].message is None
        decoder._process.kill()  # the child dies
        decoder._process.join(5)
        assert decoder.receive() is None  # a result that cannot come: told at once
        assert decoder.failed and not decoder.send(topic, batch)
    finally:
        decoder.close()
