"""procmaster's HTTP parser against gunicorn 27.0.1's request corpus (issue 15).

``bench/http_corpus.py`` downloads gunicorn's released sdist (pip, cached in the
user's cache directory), reads the fixtures of its default configuration from the
tarball and sends each to a real procmaster over a socket. Without network the
download fails and so does this test: CI must measure it, never skip it.
"""

from __future__ import annotations

import sys

from support import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import http_corpus  # noqa: E402  (bench/ is not a package)


def test_gunicorn_corpus_is_refused_and_parsed_as_the_rfc_asks():
    figures = http_corpus.measure()
    report = "\n".join(figures.misses)
    assert (figures.invalid, figures.invalid_total) == (53, 53), report
    assert (figures.valid, figures.valid_total) == (47, 47), report
    # every RFC rule that counted a refusal as right was used, and named
    assert sum(len(names) for names in figures.rules.values()) == 23, figures.rules
    # the requests refused for their missing Host parse as expected with one
    # (valid/013: llhttp refuses the spaces around ';' in its chunk extensions)
    assert figures.with_host_total == 17
    assert figures.with_host >= 16, figures.notes
