"""The simulator on real documents: answers read like a model's, not like the prompt.

Documents nobody on the team wrote: copies of Debian's /usr/share/common-licenses/{BSD,LGPL-3,
CC0-1.0} and /usr/share/doc/{zlib1g,gzip,tar}/copyright as tests/cases/real-*.txt, plus, for the
rates, every license and copyright file on this machine when /usr/share has them. Every
request goes through the official openai client to the local Batch API, with the shipped
DocumentSummary schema and the shipped nightly job's prompt and 800-token output cap.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from localbatch._text import Document
from schemas.contacts import ContactsV1
from schemas.invoice import InvoiceV1
from schemas.response_format import response_format_for
from schemas.summary import DocumentSummary
from tasks.sources import html_to_text
from tests.localbatch._helpers import read_lines, run_batch

CASES = Path(__file__).resolve().parents[1] / "cases"
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
PROMPT = "Summarize the following document (part 1 of 1).\nSource file: {id}\n\n<document>\n{text}\n</document>\n"
SYSTEM = "You summarize business documents for a daily digest read by busy colleagues."


def _line(
    custom_id: str, user: str, model: type[Any] = DocumentSummary, **body: Any
) -> dict[str, Any]:
    fmt = response_format_for(model, "/v1/chat/completions")
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4.1-mini",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "response_format": fmt,
            "max_completion_tokens": 800,
            "temperature": 0.2,
            **body,
        },
    }


def _answers(client: OpenAI, lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """custom_id → the parsed answer (or the finish reason when the answer was cut)."""
    batch = run_batch(client, lines)
    assert batch.status == "completed"
    out: dict[str, dict[str, Any]] = {}
    for line in read_lines(client, batch.output_file_id):
        choice = line["response"]["body"]["choices"][0]
        if choice["finish_reason"] == "length":
            out[line["custom_id"]] = {"_finish": "length"}
        else:
            out[line["custom_id"]] = json.loads(choice["message"]["content"])
    assert len(out) == len(lines)
    return out


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _real_documents() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(CASES.glob("real-*.txt"))}


def _machine_documents(limit: int = 400) -> dict[str, str]:
    """License and copyright files of this machine (none on a machine without /usr/share/doc)."""
    paths = sorted(Path("/usr/share/common-licenses").glob("*"))
    paths += sorted(Path("/usr/share/doc").glob("*/copyright"))
    found: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text and len(found) < limit:
            found[str(path)] = text[:20_000]
    return found


def test_titles_summaries_and_lists_come_from_the_document(client: OpenAI) -> None:
    docs = _real_documents()
    assert len(docs) >= 6
    names = list(docs)
    answers = _answers(
        client,
        [_line(f"d{i}", PROMPT.format(id=name, text=docs[name])) for i, name in enumerate(names)],
    )
    for i, name in enumerate(names):
        answer, text = answers[f"d{i}"], docs[name]
        DocumentSummary.model_validate(answer)
        assert not answer["title"].startswith("Summarize"), name
        assert _words(answer["title"]) in _words(text), (name, answer["title"])
        assert len(answer["title"].split()) <= 12
        sentences = [s for s in re.split(r"(?<=[.!?…])\s+", answer["summary"]) if s]
        assert 2 <= len(sentences) <= 5, (name, answer["summary"])
        assert len(set(sentences)) == len(sentences), "no sentence twice"
        for sentence in sentences:  # extractive: every sentence is the document's own
            assert _words(sentence.rstrip("…"))[:60] in _words(text), (name, sentence)
        points, actions = answer["key_points"], answer["action_items"]
        assert 3 <= len(points) <= 7, (name, points)
        assert len(set(points)) == len(points) and len(set(actions)) == len(actions)
        assert not set(points) & set(actions), "key points never copy action items"
        assert 1 <= len(answer["topics"]) <= 5
        assert all(t == t.lower() and 1 <= len(t.split()) <= 3 for t in answer["topics"])
        assert len(set(answer["topics"])) == len(answer["topics"])
        assert answer["language"] == "en"


def test_enums_and_action_items_fit_the_text(client: OpenAI) -> None:
    files = {
        "email": "customer-email-refund-request.txt",
        "memo": "board-memo-office-move.txt",
        "invoice": "invoice-acme-1042.txt",
        "report": "incident-2025-09-14-queue-backlog.md",
        "contract": None,
    }
    texts = {kind: (SAMPLES / f).read_text(encoding="utf-8") for kind, f in files.items() if f}
    texts["contract"] = (CASES / "real-BSD-license.txt").read_text(encoding="utf-8")
    answers = _answers(client, [_line(k, PROMPT.format(id=k, text=t)) for k, t in texts.items()])
    for kind in texts:
        assert answers[kind]["document_type"] == kind, (kind, answers[kind])
    email = answers["email"]
    assert email["title"] == "Refund for a kettle that stopped working after three weeks"
    assert email["sentiment"] == "negative"
    assert any("how to send it back" in item for item in email["action_items"])
    incident = answers["report"]
    assert incident["title"].startswith("Incident review: order queue backlog")
    assert len(incident["action_items"]) >= 3
    assert all("owner:" in item for item in incident["action_items"])
    assert answers["memo"]["title"] == "Consolidating into the new Leeds office in January"
    # An invoice's lines are fields, not sentences: its summary says what a model would of it
    # (picked as sentences, its lines made a summary of two postal addresses).
    assert answers["invoice"]["summary"] == (
        "Invoice INV-1042 from Acme Industrial Supplies LTD to Greenfield Bakery Co., dated 03 "
        "September 2025, for 4 items: £466.68 due by 03 October 2025. Payment terms: Net 30."
    )
    assert answers["invoice"]["key_points"][1:] == [
        "Total due: £466.68",
        "Due date: 03 October 2025",
        "Payment terms: Net 30",
    ]
    assert answers["invoice"]["key_points"][0].startswith("4 line items: ")
    assert answers["invoice"]["topics"][:2] == ["invoice", "proofing baskets"]


def test_meeting_notes_and_a_web_page(client: OpenAI) -> None:
    notes = gzip.decompress((SAMPLES / "meeting-notes-team-sync.txt.gz").read_bytes()).decode()
    page, _ = html_to_text((SAMPLES / "product-launch-solar-lantern.html").read_text("utf-8"))
    answers = _answers(
        client,
        [
            _line("notes", PROMPT.format(id="n", text=notes)),
            _line("page", PROMPT.format(id="p", text=page)),
        ],
    )
    meeting = answers["notes"]
    assert meeting["document_type"] == "meeting_notes"
    assert any("Omar will chase legal by Wednesday" in item for item in meeting["action_items"])
    assert not {"omar", "grace", "lina"} & set(meeting["topics"]), "names are not topics"
    launch = answers["page"]
    assert launch["title"] == "Introducing the Lumen Trail solar lantern", "not the site's menu"
    assert launch["action_items"] == [], "a month that 'will' do something asks nothing of anyone"


def test_extraction_fields_copy_what_the_document_prints(client: OpenAI) -> None:
    invoice_text = (SAMPLES / "invoice-acme-1042.txt").read_text(encoding="utf-8")
    email_text = (SAMPLES / "customer-email-refund-request.txt").read_text(encoding="utf-8")
    answers = _answers(
        client,
        [
            _line(
                "inv",
                f"Extract the invoice fields from this document (x).\n\n{invoice_text}",
                InvoiceV1,
            ),
            _line(
                "contacts",
                f"List the people and organizations named in this document.\n\n{email_text}",
                ContactsV1,
            ),
        ],
    )
    invoice = InvoiceV1.model_validate(answers["inv"])
    assert invoice.is_invoice
    assert (invoice.invoice_number, invoice.currency) == ("INV-1042", "GBP")
    assert (str(invoice.invoice_date), str(invoice.due_date)) == ("2025-09-03", "2025-10-03")
    assert (invoice.subtotal, invoice.tax_amount, invoice.total) == (388.90, 77.78, 466.68)
    assert [item.description for item in invoice.line_items][:1] == [
        "Stainless steel mixing bowl 20 L"
    ]
    assert [item.amount for item in invoice.line_items] == [250.0, 84.0, 39.9, 15.0]
    assert invoice.payment_terms == "Net 30"
    contacts = ContactsV1.model_validate(answers["contacts"])
    hannah = next(p for p in contacts.people if p.full_name == "Hannah Okafor")
    assert [e.address for e in hannah.emails] == ["hannah.okafor@example.net"]
    assert hannah.job_title is None, "nothing in the text to fill it: null, not a guess"


def test_at_most_two_percent_truncated_without_a_fault(client: OpenAI) -> None:
    docs = {**_real_documents(), **_machine_documents()}
    lines = []
    for i, (name, text) in enumerate(docs.items()):
        lines.append(_line(f"w{i}", PROMPT.format(id=name, text=text)))
        # and the ~2 KB opening, as in the measurement
        opening = text[: text.rfind("\n", 0, 2000) if len(text) > 2000 else len(text)]
        lines.append(_line(f"o{i}", PROMPT.format(id=name, text=opening)))
    answers = _answers(client, lines)
    cut = [cid for cid, answer in answers.items() if answer.get("_finish") == "length"]
    assert len(cut) <= 0.02 * len(lines), f"{len(cut)} of {len(lines)} truncated"
    prompt_titles = [
        cid for cid, a in answers.items() if a.get("title", "").startswith("Summarize")
    ]
    assert prompt_titles == []
    for answer in answers.values():
        if "_finish" in answer:
            continue
        points, actions = answer["key_points"], answer["action_items"]
        assert len(set(points)) == len(points) and len(set(actions)) == len(actions)
        assert not set(points) & set(actions)


def test_a_small_cap_gets_a_shorter_answer_not_a_cut_one(client: OpenAI) -> None:
    text = (CASES / "real-LGPL-3-license.txt").read_text(encoding="utf-8")
    answers = _answers(
        client,
        [
            _line("roomy", PROMPT.format(id="a", text=text)),
            _line("tight", PROMPT.format(id="a", text=text), max_completion_tokens=250),
        ],
    )
    roomy, tight = answers["roomy"], answers["tight"]
    assert "_finish" not in tight, "the answer is written to fit the cap"
    assert len(json.dumps(tight)) < len(json.dumps(roomy))
    assert tight["title"] == roomy["title"]


def _symbol_list() -> str:
    """A C++ library's exported symbols, as Debian ships them: each line one long token run."""
    names = ["logic_error", "runtime_error", "bad_exception", "basic_string", "char_traits"]
    return "\n".join(
        f"FUNC:_ZGTtNSt{len(names[i % 5])}{names[i % 5]}C{i % 3}ERKNSt7__cxx1112basic_string"
        f"IcSt11char_traitsIcESaIcEEE@@GLIBCXX_3.4.{20 + i % 9}"
        for i in range(400)
    )


def _pem() -> str:
    import base64

    body = base64.b64encode(bytes((i * 37 + 11) % 256 for i in range(3000))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def test_token_dense_text_gets_an_answer_within_the_cap(client: OpenAI) -> None:
    # A symbol list or a key file has "words" of dozens of tokens: with 600 output tokens,
    # every answer for /usr/share/doc's libstdc++ symbol lists and PEM files was cut.
    answers = _answers(
        client,
        [
            _line(name, PROMPT.format(id=name, text=text), max_completion_tokens=600)
            for name, text in (("symbols", _symbol_list()), ("pem", _pem()))
        ],
    )
    assert answers["symbols"].get("_finish") is None and answers["pem"].get("_finish") is None
    assert answers["symbols"]["summary"] and answers["pem"]["summary"]


@pytest.mark.parametrize(
    ("user", "title"),
    [
        (
            "List the people and organizations named in this document.\n\nApache License\n\nSome text here. More text follows.",
            "Apache License",
        ),
        ("Some Title\n\nThe first sentence is here. A second one follows.", "Some Title"),
        (
            "<text>\n# Markdown heading\n\nBody sentence one. Body sentence two.\n</text>",
            "Markdown heading",
        ),
    ],
)
def test_the_document_is_found_inside_any_prompt(client: OpenAI, user: str, title: str) -> None:
    answers = _answers(client, [_line("x", user)])
    assert answers["x"]["title"] == title


_NESTED_ADDRESSES = (
    "Manual pages of the project.\n\n"
    "Write to manpages.kerrisk@example.org or to kerrisk@example.org about the manual pages. "
    "The project publishes pages for system calls, library functions and file formats. "
    "Reports about the pages are welcome from every reader of the manual."
)


def test_an_address_inside_a_longer_one_is_not_read_as_words() -> None:
    """Regression: addresses were removed in set order, so `manpages.kerrisk@...` left
    `manpages.` behind in some processes and not in others (answers changed with the hash
    seed)."""
    doc = Document(_NESTED_ADDRESSES)
    assert "manpages" not in doc.keywords
    assert "kerrisk" not in doc.keywords


def test_a_table_of_contents_is_not_summarized() -> None:
    """A PDF manual's text opens with its contents, dot leaders and all; a model would not
    quote those lines as the summary (one did: "1 2 ASN.1 structure handling . . . . .")."""
    contents = "\n".join(
        f"{n} {title} . . . . . . . . . . . . . . . . {n * 3}"
        for n, title in enumerate(
            [
                "Introduction to the library",
                "Structure handling rules",
                "Encoding of the values",
                "Decoding of the values",
            ],
            1,
        )
    )
    prose = (
        "The library parses abstract syntax notation structures at run time. "
        "It encodes and decodes values with the distinguished encoding rules. "
        "Programs describe their structures in a text file that the library reads."
    )
    doc = Document(f"Library Manual\n\n{contents}\n\n{prose}\n")
    assert ". . ." not in doc.summary()
    assert not any(". . ." in point for point in doc.key_sentences(2, 4))
    assert doc.summary().startswith("The library parses")


def test_answers_are_the_same_in_every_process() -> None:
    """The simulator is deterministic per seed across processes, whatever PYTHONHASHSEED is."""
    script = (
        "import sys, orjson; from localbatch._jsongen import Document, SchemaFaker; "
        "from schemas.response_format import response_format_for; "
        "from schemas.summary import DocumentSummary; "
        "s = response_format_for(DocumentSummary, '/v1/chat/completions')['json_schema']; "
        "docs = sys.stdin.read().split('\\x1e'); "
        "print(orjson.dumps([SchemaFaker(s['schema']).generate(Document(d, 7)) "
        "for d in docs]).decode())"
    )
    docs = [_NESTED_ADDRESSES, *list(_real_documents().values())[:20]]
    answers = {
        subprocess.run(
            [sys.executable, "-c", script],
            input="\x1e".join(docs),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            cwd=Path(__file__).resolve().parents[2],
        ).stdout
        for seed in (1, 2, 3, 4)
    }
    assert len(answers) == 1


def test_text_laid_out_in_columns_is_quoted_with_single_spaces(client: OpenAI) -> None:
    name = "invoice-acme-1042.txt"
    text = (SAMPLES / name).read_text(encoding="utf-8")
    assert "     " in text  # the sample lays its header out in columns, as invoices do
    answer = _answers(client, [_line("inv", PROMPT.format(id=name, text=text))])["inv"]
    quoted = [answer["title"], answer["summary"], *answer["key_points"], *answer["action_items"]]
    for value in quoted:
        assert "  " not in value and "\t" not in value, value
    # "The three to seven most important facts": a form with few real sentences still has three
    assert 3 <= len(answer["key_points"]) <= 7, answer["key_points"]


def test_a_reduce_request_combines_the_parts_answers(client: OpenAI) -> None:
    """A long document's parts each got an answer; the reduce request (`chunking.output =
    "document"`) asks to combine them. The answer reads like one summary of the document: the
    first part's title, sentences from what the parts' answers say; before, its title was the
    request's own instruction and its summary the parts' JSON."""
    from tasks.render import reduce_user_text

    docs = _real_documents()
    first, second = list(docs)[:2]
    parts = _answers(
        client,
        [_line("p1", PROMPT.format(id="long.txt", text=docs[first])),
         _line("p2", PROMPT.format(id="long.txt", text=docs[second]))],
    )  # fmt: skip
    outputs = [json.dumps(parts["p1"]), json.dumps(parts["p2"])]
    combined = _answers(client, [_line("r", reduce_user_text("long.txt", outputs))])["r"]
    DocumentSummary.model_validate(combined)
    assert combined["title"] == parts["p1"]["title"]
    said = _words(" ".join(
        " ".join([p["summary"], *p["key_points"], *p["action_items"]]) for p in parts.values()
    ))  # fmt: skip
    fields = [combined["summary"], *combined["key_points"], *combined["action_items"]]
    for text in fields:
        assert "{" not in text and "too long to read" not in text, text
    sentences = [s for s in re.split(r"(?<=[.!?…])\s+", combined["summary"]) if s]
    assert len(sentences) >= 2
    for sentence in sentences:
        assert _words(sentence.rstrip("…"))[:60] in said, sentence
    assert any(_words(p)[:40] in _words(docs[second]) for p in combined["key_points"]), (
        "the second part's answer counts too"
    )


def test_a_sentence_cut_in_one_parts_answer_and_whole_in_anothers_is_said_once(
    client: OpenAI,
) -> None:
    """A long changelog's parts overlap: one part's answer ended on a sentence cut short
    ("…"), the next one's held it whole, and the combined summary said it twice."""
    from tasks.render import reduce_user_text

    whole = (
        "Files referenced by file: in setup.cfg and by project.readme.file or "
        "tool.setuptools.dynamic in pyproject.toml are now included in the generated sdists."
    )
    cut = "Files referenced by file: in setup.cfg and by project.readme.file…"
    first = {
        "title": "Setuptools 66 changes",
        "summary": f"Fixed the file directive when its value is a plain string. {cut}",
        "key_points": ["The file directive takes a plain string.", cut],
    }
    second = {
        "title": "Setuptools 66 changes",
        "summary": f"{whole} Support for versions that do not follow PEP 440 was removed.",
        "key_points": [whole, "Versions that do not follow PEP 440 are no longer supported."],
    }
    outputs = [json.dumps(first), json.dumps(second)]
    combined = _answers(client, [_line("r", reduce_user_text("changes.txt", outputs))])["r"]
    for field in ("summary", "key_points"):
        value = combined[field]
        items = re.split(r"(?<=[.!?…])\s+", value) if isinstance(value, str) else value
        said = [_words(item.rstrip("…")) for item in items]
        assert sum("files referenced by file" in item for item in said) == 1, (field, items)


def test_documents_in_other_scripts_get_summaries_in_their_language(client: OpenAI) -> None:
    """Sentences and words were found in ASCII letters only: a Russian, Greek or Japanese
    document got an empty summary, no key points and language 'en', a French one topics cut at
    its accents ('comit')."""
    docs = {
        "ru": "# Отчёт о продажах за март 2026 года\n\nВыручка компании «Северный ветер» в марте "
        "составила 12,4 млн рублей. Это на 8% больше, чем в феврале. Совет директоров одобрил "
        "план расширения склада. Новый склад откроется в мае.",
        "el": "Η εταιρεία ανακοίνωσε αύξηση των πωλήσεων κατά οκτώ τοις εκατό. Το διοικητικό "
        "συμβούλιο ενέκρινε τον νέο προϋπολογισμό. Το νέο κατάστημα ανοίγει τον Μάιο.",
        "ja": "売上高は前年比で八パーセント増加した。新しい店舗が東京で開店した！"
        "来月は大阪でも開店する予定である。",
        "fr": "Le comité de direction a voté le budget annuel. Élodie présente les résultats du "
        "trimestre aux équipes. Les coûts ont augmenté de quatre pour cent en mars.",
    }
    answers = _answers(
        client, [_line(code, PROMPT.format(id=f"{code}.txt", text=t)) for code, t in docs.items()]
    )
    for code, text in docs.items():
        answer = answers[code]
        DocumentSummary.model_validate(answer)
        assert answer["language"] == code, (code, answer["language"])
        assert answer["summary"] and answer["key_points"], code
        for point in answer["key_points"]:
            assert point.rstrip("…") in text, (code, point)
        for topic in answer["topics"]:
            assert all(word in text.lower() for word in topic.split()), (code, topic)
    assert answers["ru"]["title"] == "Отчёт о продажах за март 2026 года"
    assert answers["ru"]["summary"].startswith("Выручка компании «Северный ветер»")
    assert "comité" in answers["fr"]["topics"]


def test_a_letters_greeting_and_sign_off_are_no_key_points(client: OpenAI) -> None:
    """'Hello,' and 'Kind regards, Maria Keller' came back as key points of an e-mail."""
    mail = (
        "Subject: Pump delivery\nFrom: maria.keller@example.com\n\nHello,\n\n"
        "The two hydraulic pumps arrived on Monday. One housing was cracked in transit. "
        "Please send a replacement housing before Friday.\n\nKind regards,\nMaria Keller"
    )
    answer = _answers(client, [_line("m", PROMPT.format(id="mail.eml", text=mail))])["m"]
    said = [answer["summary"], *answer["key_points"], *answer["action_items"]]
    assert answer["key_points"]
    for text in said:
        assert "Hello" not in text and "regards" not in text, text
    assert any("cracked" in point for point in answer["key_points"])


def test_a_slide_of_table_cells_is_quoted_without_tabs(client: OpenAI) -> None:
    """A slide holding only a table (cells tab-separated) gave 'KPIs KPI\\tValue' as summary."""
    slide = "KPIs\n\nKPI\tValue\n\nNPS\t42\n\nChurn\t3.1%"
    answer = _answers(client, [_line("s", PROMPT.format(id="kpi.pptx", text=slide))])["s"]
    for text in [answer["title"], answer["summary"], *answer["key_points"]]:
        assert "\t" not in text, text
    assert answer["summary"].startswith("KPIs KPI Value")


def test_an_all_capitals_heading_keeps_its_codes() -> None:
    """'INVOICE INV-2026-0917' became 'Invoice Inv-2026-0917': a number no longer matched."""
    doc = Document("INVOICE INV-2026-0917\n\nBill to: Northwind Traders\nTotal: 1,250.00 EUR\n")
    assert doc.title == "Invoice INV-2026-0917"
    assert Document("QUARTERLY SALES REPORT\n\nSales rose in March.").title == (
        "Quarterly Sales Report"
    )
    memo = Document("Memo: Price increase 2026\n\nFrom 1 April all list prices rise by 4.5%.")
    assert memo.title == "Price increase 2026"  # the memo's own line, not its first sentence
    # An identifier heading a reference page stays as written ("Cmake_cache_major_version").
    reference = "CMAKE_CACHE_MAJOR_VERSION\n-------------------------\n\nThe major version.\n"
    assert Document(reference).title == "CMAKE_CACHE_MAJOR_VERSION"


def test_a_markdown_table_is_read_row_by_row() -> None:
    """A Markdown table was one run-on sentence: '|---|---| | Pumps | 4 | ...' as the title."""
    doc = Document("| Item | Qty |\n|---|---|\n| Pumps | 4 |\n| Kits | 20 |\n")
    assert doc.sentences == ["Item | Qty", "Pumps | 4", "Kits | 20"]
    assert "---" not in doc.title and not doc.title.startswith("|")


def test_a_german_letter_keeps_its_dates_and_drops_its_greeting(client: OpenAI) -> None:
    """'Sehr geehrte Damen und Herren,' was a key point, and 'am Dienstag, 24. März' ended a
    sentence at the day's ordinal."""
    mail = (
        "Betreff: Bestätigung Liefertermin\n\nSehr geehrte Damen und Herren,\n\nhiermit "
        "bestätigen wir die Lieferung am Dienstag, 24. März zwischen 8 und 10 Uhr. Bitte stellen "
        "Sie sicher, dass die Rampe frei ist. Die Rechnung folgt per Post.\n\n"
        "Mit freundlichen Grüßen\nAnna Schmidt"
    )
    answer = _answers(client, [_line("g", PROMPT.format(id="brief.eml", text=mail))])["g"]
    assert answer["language"] == "de"
    said = [answer["summary"], *answer["key_points"], *answer["action_items"]]
    assert not any("geehrte" in text or "Grüßen" in text for text in said), said
    assert any("24. März zwischen 8 und 10 Uhr" in text for text in said), said


def test_a_manual_page_is_titled_by_its_name_line(client: OpenAI) -> None:
    """A manual page as overnight sends it (the text `man` shows): its title is its NAME line,
    not the NAME heading, nor an example's shell comment ("# with switches, ...")."""
    from tasks.sources._man import man_to_text
    from tests.tasks.test_man_pages import MAN_PAGE

    page, _ = man_to_text(MAN_PAGE.replace(".nf\n", ".nf\n# count every shelf\n", 1))
    answer = _answers(client, [_line("man", PROMPT.format(id="frob.1.gz", text=page))])["man"]
    assert answer["title"] == "frob - frob the widgets of a warehouse"
    assert "Frob reads each FILE" in answer["summary"]


def test_a_shell_comment_in_an_indented_example_is_no_title() -> None:
    """Indented four columns, a `#` line is code, as Markdown has it: an Info manual's example
    ("     # WRONG USAGE: 'FILE' will be truncated.") titled sed's whole manual."""
    text = (
        "Backup procedure\n\nRun the nightly job as the backup user, as follows:\n\n"
        "     # never run this as root\n     backup --all /srv\n\n"
        "Restore a day with backup --restore and its date.\n"
    )
    assert Document(text).title == "Backup procedure"
    assert Document("# Restoring a day\n\nRun backup --restore.\n").title == "Restoring a day"


GCLOUD_PAGE = r""".TH "GCLOUD_WIDGETS_LIST" 1
.SH "NAME"
.HP
gcloud widgets list \- list the widgets of a warehouse
.SH "SYNOPSIS"
.HP
\f5gcloud widgets list\fR [\fB\-\-shelf\fR=\fISHELF\fR] [\fB\-\-async\fR] [\fIGCLOUD_WIDE_FLAG\ ...\fR]
.SH "DESCRIPTION"
List the widgets of a warehouse, shelf by shelf, with their counts.
.SH "FLAGS"
.RS 2m
.TP 2m
\fB\-\-shelf\fR=\fISHELF\fR
Only the widgets of this shelf.
.TP 2m
\fB\-\-async\fR
Return immediately, without waiting for the count in progress to complete.
.RE
.SH "GCLOUD WIDE FLAGS"
These flags are available to all commands: \-\-help.
.SH "NOTES"
This variant is also available:
.RS 2m
$ gcloud beta widgets list
.RE
"""

"""A command's manual page as the Google Cloud SDK writes them (NAME, SYNOPSIS, FLAGS, NOTES)."""


def test_a_manual_page_is_documentation(client: OpenAI) -> None:
    """Its sections name it: 74 of 300 sampled pages of Debian's /usr/share/man were simulated
    as meeting notes (a `gcloud` page's NOTES section was enough), 288 are documentation now."""
    from tasks.sources._man import man_to_text

    page, _ = man_to_text(GCLOUD_PAGE)
    answer = _answers(client, [_line("man", PROMPT.format(id="list.1.gz", text=page))])["man"]
    assert answer["document_type"] == "documentation"
    assert answer["title"] == "gcloud widgets list - list the widgets of a warehouse"


CHANGELOG = """frobnicate (2.1-1) unstable; urgency=medium

  * New upstream release.
  * Fix the crash when the widget list is empty (Closes: #1001).

 -- Ada Example <ada@example.org>  Mon, 02 Nov 2026 10:00:00 +0000

frobnicate (2.0-2) unstable; urgency=low

  * Build with the new toolchain.

 -- Ada Example <ada@example.org>  Sun, 01 Nov 2026 09:00:00 +0000

# Older entries have been removed from this changelog.
# To read the complete changelog use `apt changelog frobnicate`.
"""
"""The shape of Debian's trimmed changelogs, which end in a `#` note."""

FRONT_MATTER_PAGE = """---
title: Shelves And Their Widgets
category: Interfaces
layout: default
SPDX-License-Identifier: LGPL-2.1-or-later
---

# Shelves And Their Widgets

Every widget sits on one shelf. A shelf holds at most forty widgets, and a full shelf refuses
new ones until one is taken away.
"""
"""A Markdown page with YAML front matter, as static-site generators (and systemd's docs) have."""

RELEASE_NOTES = """Frobnicate v2.1 Release Notes
=============================

Fixes since v2.0
----------------

 * The widget list no longer crashes when it is empty.
 * Shelves with more than forty widgets are refused with a clear message.
"""


def test_a_changelog_a_front_matter_page_and_release_notes(client: OpenAI) -> None:
    """Debian's /usr/share/doc, simulated: its trimmed changelogs were titled by their last
    line ("Older entries have been removed from this changelog."), a page's front matter was
    summarized ("title: … category: Interfaces layout: default SPDX-License-Identifier …"),
    and Git's release notes were meeting notes (by "notes") or an article (by "release")."""
    answers = _answers(
        client,
        [
            _line("changelog", PROMPT.format(id="changelog.Debian.gz", text=CHANGELOG)),
            _line("page", PROMPT.format(id="SHELVES.md", text=FRONT_MATTER_PAGE)),
            _line("notes", PROMPT.format(id="RelNotes/2.1.txt", text=RELEASE_NOTES)),
        ],
    )
    assert answers["changelog"]["title"] == "frobnicate (2.1-1) unstable; urgency=medium"
    assert answers["page"]["title"] == "Shelves And Their Widgets"
    assert answers["page"]["summary"].startswith("Every widget sits on one shelf.")
    for field in ("summary", "key_points"):
        assert "layout" not in str(answers["page"][field])
        assert "SPDX" not in str(answers["page"][field])
    assert answers["notes"]["title"] == "Frobnicate v2.1 Release Notes"
    assert answers["notes"]["document_type"] == "documentation"
    # A Markdown title after a few lines of text is still the title.
    assert Document("[build: passing]\n\n# Shelves\n\nEvery widget sits on a shelf.\n").title == (
        "Shelves"
    )


def test_an_image_without_text_is_described_not_summarized_as_empty(client: OpenAI) -> None:
    """An image document (a scan, a photo) has no text for the simulator, which cannot see:
    its answer said "(empty document)" in every field; now it says what it was given."""
    import base64
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(png, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    line = _line("scan", "")
    line["body"]["messages"][1]["content"] = [
        {"type": "text", "text": PROMPT.format(id="scan-001.png", text="")},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    answer = _answers(client, [line])["scan"]
    assert answer["title"] == "A 64 × 48 PNG image"
    assert "not look at images" in answer["summary"]
    assert "(empty document)" not in json.dumps(answer)


def test_scripts_and_xml_are_not_titled_by_their_first_line_of_code() -> None:
    """Of Debian's /usr/share/doc, 19 scripts were titled "!/bin/bash", 17 "!/usr/bin/perl" and
    16 XML files '<?xml version="1.0" encoding="UTF-8"?>'."""
    script = "#!/bin/bash\n\n# Rotate the shelf logs every night\nfind /var/log/shelves -delete\n"
    assert Document(script).title == "Rotate the shelf logs every night"
    catalog = '<?xml version="1.0" encoding="UTF-8"?>\n<catalog>\n  <title>Widget catalog</title>\n'
    assert Document(catalog + "</catalog>\n").title == "Widget catalog"
    example = '<?xml version="1.0"?>\n<!-- XML Security Library example: a signed order. -->\n'
    assert Document(example + "<Order><Id>7</Id></Order>\n").title.startswith(
        "XML Security Library example"
    )


@pytest.mark.parametrize(
    ("text", "title"),
    [
        # GNU's README and NEWS files open with Emacs's mode line: both were titled "text".
        ("-*- text -*-\nGNU Wget\n========\n\nGNU Wget is a free utility.\n", "GNU Wget"),
        (
            "GnuTLS NEWS -- History of user-visible changes.  -*- outline -*-\n\n"
            "* Version 3.7.9 (released 2023-02-09)\n\n** libgnutls: Fix a timing side-channel.\n",
            "GnuTLS NEWS -- History of user-visible changes",
        ),
        # Python's source encoding and editor settings were titles ("coding: utf-8").
        (
            "# -*- coding: utf-8 -*-\n# vim: tabstop=4 shiftwidth=4 expandtab\n#\n"
            "# Shelf labels for the warehouse printers\nimport logging\n",
            "Shelf labels for the warehouse printers",
        ),
        (
            "#!/bin/sh\n# vim:set ft=sh sw=2 et:\n\n# Start the label spooler\nexec spool\n",
            "Start the label spooler",
        ),
        (
            "# noqa\n# type: ignore\n# flake8: noqa\n# pylint: skip-file\n"
            "# Generated shelf codes: do not edit by hand\nCODES = {}\n",
            "Generated shelf codes",
        ),
        (
            "// SPDX-License-Identifier: GPL-2.0\n/*\n * Count the label jams of each printer.\n */\n",
            "Count the label jams of each printer",
        ),
        # A docstring's quotes were part of the title ('"""PEP 656 support').
        ('"""PEP 656 support.\n\nDetect the musl version.\n"""\n\nimport os\n', "PEP 656 support"),
        (
            '"""\n    shelves.labels\n    ~~~~~~~~~~~~~~\n\n    Labels for the warehouse shelves.\n"""\n',
            "Labels for the warehouse shelves",
        ),
    ],
)
def test_what_tells_tools_how_to_read_a_file_is_no_title(text: str, title: str) -> None:
    """Of 320 files from /usr/share/doc, /etc and Python's packages, 16 were titled by an
    editor's mode line, a source encoding, a licence tag, a linter's pragma or a docstring's
    quotes."""
    found = Document(text).title
    for directive in ("-*-", "coding", "vim", "SPDX", "noqa", "flake8", '"""', "!/bin", "*/"):
        assert directive not in found, found
    assert found.startswith(title), found


def test_short_messages_get_their_tone_and_long_technical_texts_stay_neutral() -> None:
    """The demo's survey comments and support tickets were all `neutral` (one word of praise
    or complaint was too few), and of 320 real changelogs, manuals and licences, 92 were
    `negative` ("crash", "error", "issue" in a long text) and 13 licences `positive` ("free")."""
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    rows = list(csv.DictReader((samples / "survey-comments.csv").open(encoding="utf-8")))
    tickets = [json.loads(line) for line in (samples / "support-tickets.jsonl").open()]
    tones = [Document(r["text"]).sentiment for r in [*rows, *tickets]]
    # "much faster ..., but approvals still take a week"; "works well"; "confusing ... nobody";
    # "cannot print ... freezes ... timeout"; "look great ... keep missing it"; "charged twice".
    assert tones == ["mixed", "positive", "negative", "negative", "mixed", "negative"]
    notes = gzip.decompress((samples / "meeting-notes-team-sync.txt.gz").read_bytes()).decode()
    assert Document(notes).sentiment == "neutral", "a 'Risks' heading is no complaint"
    changelog = "\n".join(
        f"* {'Fix a crash when' if n % 5 == 0 else 'Handle the case where'} the cache file of "
        f"the build directory is kept across upgrades (#{n}). The `config --list` command now "
        "prints each setting with the file that defines it, and the documentation of the "
        "remote helpers describes the capabilities they advertise and their options."
        for n in range(100, 160)
    )
    assert Document(changelog).sentiment == "neutral"
    for case in sorted(CASES.glob("real-*-license.txt")):
        assert Document(case.read_text(encoding="utf-8")).sentiment == "neutral", case.name
    complaint = (
        "I am very disappointed. The kettle stopped working after three weeks, the refund "
        "form fails with an error, and nobody answers the phone."
    )
    assert Document(complaint).sentiment == "negative"


def test_a_first_line_over_fields_is_the_title_commas_and_all() -> None:
    """The demo's quarterly report was titled "Northgate Housing Association" (its first line
    cut at the dash) and, its "Quarterly report" lost with the rest of that line, typed as an
    invoice for "98.6% of the amount due"."""
    report = (
        "Northgate Housing Association - Quarterly report, Q2 2025\n"
        "Repairs: 2,310 repair requests were completed this quarter, 94% within target time.\n"
        "Rent collection reached 98.6% of the amount due, up from 97.9% in Q1.\n"
        "New homes: 46 homes were completed at Brook Street; 38 are let at social rent.\n"
    )
    document = Document(report)
    assert document.title == "Northgate Housing Association - Quarterly report, Q2 2025"
    kinds = ["article", "email", "report", "memo", "invoice", "contract", "other"]
    assert document.choose(kinds, "document_type") == "report"
    # A labelled sentence is a fact to sum up, not only a field: the repairs figure was left
    # out of the summary.
    assert "2,310 repair requests were completed" in document.summary()
    # A wrapped sentence's first line is no title, though the next line starts with a capital.
    wrapped = "This package was debianized by Ross Burton <ross@example.org> on\nFri, 2 May.\n"
    assert (
        Document(wrapped).title
        != "This package was debianized by Ross Burton <ross@example.org> on"
    )


def test_the_file_name_a_prompt_gives_is_a_hint_of_the_documents_kind(client: OpenAI) -> None:
    """A model reads the prompt's "Source file: support-tickets.jsonl#0" too. The demo's
    tickets, whose text never says "ticket", were typed email, invoice ("the new invoice
    templates look great") and other; a name that says nothing changes nothing."""
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    tickets = [json.loads(line)["text"] for line in (samples / "support-tickets.jsonl").open()]
    lines = [
        _line(f"t{n}", PROMPT.format(id=f"support-tickets.jsonl#{n}", text=text))
        for n, text in enumerate(tickets)
    ]
    lines += [
        _line(f"x{n}", PROMPT.format(id=f"export-{n:04d}.jsonl#0", text=text))
        for n, text in enumerate(tickets)
    ]
    # The document's own lines are not its name: "File: invoice.pdf" inside it is text.
    inside = "File: invoice-2025.pdf\n" + tickets[0]
    lines.append(
        _line("inside", f"Summarize the following document.\n\n<document>\n{inside}\n</document>\n")
    )
    answers = _answers(client, lines)
    assert [answers[f"t{n}"]["document_type"] for n in range(3)] == ["support_ticket"] * 3
    assert [answers[f"x{n}"]["document_type"] for n in range(3)] != ["support_ticket"] * 3
    assert answers["inside"]["document_type"] != "invoice"
    # Titled by what it says, not by its greeting ("Hi, just wanted to say the new invoice
    # templates look", cut at ten words).
    assert answers["t1"]["title"] == "The new invoice templates look great"


def test_a_translated_manual_page_is_titled_by_its_name_line() -> None:
    """A Portuguese or German page opens with NOME or BEZEICHNUNG, not NAME: its title was
    the heading itself ("Nome")."""
    for heading in ("NOME", "BEZEICHNUNG", "ИМЯ"):
        page = f"{heading}\n\nrun-parts - corre scripts ou programas num directório\n\nSINOPSE\n"
        assert Document(page).title == "run-parts - corre scripts ou programas num directório"


REPLY = """From: Priya Nair <priya.nair@example.com>
To: Facilities Team <facilities@example.com>
Subject: Re: Air conditioning in meeting room 3
Date: Tue, 9 Sep 2025 09:14:02 +0100

Hi all,

The unit in room 3 broke down again this morning and the room reached 31 degrees by ten. We had to move the client workshop to the canteen. Could you get the contractor back this week and confirm the visit date by Thursday?

Thanks,
Priya

--
Priya Nair | Office Manager | Example Ltd
+44 20 7946 0000

On Mon, 1 Sep 2025 at 16:02, Facilities Team <facilities@example.com> wrote:
> Hi Priya, the contractor replaced the fan motor today and the unit is working again.
> Let us know if anything else comes up.
>
> Best regards,
> Facilities

CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be privileged. If you are not the intended recipient, please notify the sender immediately and delete this message. Any unauthorised use is strictly prohibited.
"""


def test_a_reply_is_summed_up_without_what_it_quotes_its_signature_or_its_disclaimer(
    client: OpenAI,
) -> None:
    """A reply's quoted message, its signature and its legal footer were summed up as its
    own: the summary quoted `> Hi Priya, the contractor replaced...`, the key points and
    action items the "intended recipient" notice, and the title kept its "Re:"."""
    answer = _answers(client, [_line("mail", PROMPT.format(id="reply.eml", text=REPLY))])["mail"]
    assert answer["title"] == "Air conditioning in meeting room 3"
    said = " ".join([answer["summary"], *answer["key_points"], *answer["action_items"]])
    assert "broke down again this morning" in answer["summary"]
    assert answer["action_items"] == [
        "Could you get the contractor back this week and confirm the visit date by Thursday?"
    ]
    for quoted in (
        "fan motor",
        ">",
        "intended recipient",
        "CONFIDENTIALITY",
        "7946",
        "Office Manager",
    ):
        assert quoted not in said, quoted
    assert answer["document_type"] == "email"


def test_outside_an_email_quotes_and_double_dashes_are_text() -> None:
    """A Markdown quote is part of the page (without its `>`), a manual page's `--` option is
    an option."""
    readme = (
        "# Commit queue\n\nLand pull requests with a label.\n\n> The token needs the repo scope.\n"
    )
    assert "The token needs the repo scope." in Document(readme).sentences
    page = "OPTIONS\n\n--all\n    Check out all files.\n\n--\n    Do not read options after it.\n"
    assert any("Do not read options" in s for s in Document(page).sentences)
