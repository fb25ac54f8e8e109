"""The panel's forms against form-js itself: the same schema and data, compared in Chromium.

form-js (``@bpmn-io/form-js-viewer``, pinned in package.json) is bundled by esbuild from
``tests/formjs_oracle.mjs`` and run in Debian's Chromium, so every answer below is what a
participant would meet in Tasklist:

* ``validate.pattern`` is a JavaScript regular expression: each pattern is built with
  ``new RegExp(pattern)`` and tested on every input, as form-js' Validator does, and the
  server must give the same answer or refuse the pattern when the form is checked;
* text fields and text areas are judged as ``Form.validate()`` judges them;
* templates (``{{ … }}``, ``=…``) make the text feelers makes, except that where form-js
  shows its debug marker ``{{⚠}}`` the panel shows nothing;
* labels, descriptions, adorners and images show what the rendered form shows;
* markdown text blocks have the same code, images and text as form-js renders.
"""

from __future__ import annotations

import html
import random
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright

from panel_core.feel.jsregex import JsRegexError, JsSyntaxError, JsUnsupportedError
from panel_core.forms import ContentNode, FieldNode, GroupNode, page_fields, read_submission
from panel_core.forms.checks import check_form
from panel_core.forms.schema import Scope, expression_context
from panel_core.forms.templates import is_template, parse_template, render
from panel_core.forms.values import compile_pattern
from panel_core.i18n import use_locale

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "tests" / "formjs_oracle.mjs"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
FORM_JS = ROOT / "node_modules" / "@bpmn-io" / "form-js-viewer"
CHROMIUM = "/usr/bin/chromium"
DEBUG_MARK = " {{⚠}} "
TODAY = date(2026, 11, 22)


@dataclass
class FormJs:
    page: Page

    async def ask(self, function: str, cases: list[dict[str, Any]]) -> list[Any]:
        answers: list[Any] = await self.page.evaluate(
            f"cases => FormJsOracle.{function}(cases)", cases
        )
        assert len(answers) == len(cases)
        return answers


@pytest.fixture(scope="module")
def formjs_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """form-js and this module's oracle as one script for the browser."""
    # A missing tool fails each test that needs it rather than skipping it.
    assert Path(CHROMIUM).exists(), "Chromium is installed by ./dev setup (apt package chromium)"
    assert shutil.which("node"), "Node.js is installed by ./dev setup"
    assert FORM_JS.is_dir() and ESBUILD.exists(), "form-js and esbuild come from npm ci"
    bundle = tmp_path_factory.mktemp("formjs") / "formjs.js"
    subprocess.run(
        [str(ESBUILD), str(ENTRY), "--bundle", "--format=iife", "--global-name=FormJsOracle",
         f"--outfile={bundle}", "--log-level=warning"],
        cwd=ROOT, check=True, timeout=120,
    )  # fmt: skip
    return bundle


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def formjs(formjs_bundle: Path) -> AsyncIterator[FormJs]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            await page.set_content("<!doctype html><meta charset='utf-8'><title>form-js</title>")
            await page.add_script_tag(path=str(formjs_bundle))
            yield FormJs(page)
        finally:
            await browser.close()


# Patterns: new RegExp(pattern).test(value), as form-js' Validator runs it.

PATTERNS = [
    r"^\d{2}-\d{3}$",
    r"^a.b$",
    r"^.$",
    r"^..$",
    r"^\s+$",
    r"^\S+$",
    r"\s",
    r"^[^\s]+$",
    r"^[\s\S]$",
    r"^[^]$",
    r"[]",
    r"^(?<digit>\d)\k<digit>$",
    r"^(a)?\1b$",
    r"\1(a)",
    r"^\w+$",
    r"\bfoo\b",
    r"\Bo",
    r"\cJ",
    r"[\cJ]",
    r"^a$",
    r"a{,2}",
    r"^a{2,3}$",
    r"]",
    r"}",
    r"[\d-z]",
    r"\x41",
    r"\u0041",
    r"\uD83D\uDE00",
    "😀",
    "^[😀]$",
    r"\0",
    r"[\b]",
    r"\/",
    r"a|",
    r"(?:)",
    r"(?=a)*a",
    r"(?<=a)b",
    r"(?<!a)b",
    r"[^a]",
    r"\$",
    r"^[A-ZĄĆĘŁŃÓŚŹŻ][a-ząćęłńóśźż]+$",
    r"\.",
    r"[\-]",
    r"^\D+$",
    r"^\W+$",
    r"(a|ab)(c|bcd)(d*)",
    r"^(?:\+48)?\d{9}$",
    # JavaScript refuses these; the panel must too.
    r"(",
    r")",
    r"[",
    "\\",
    r"a{3,2}",
    r"[z-a]",
    r"x*+",
    r"*",
    r"(?P<name>a)",
    r"(?>a)",
    r"(?<1>a)",
    r"\k<missing>(?<x>a)",
]
INPUTS = [
    "", "a", "b", "ab", "a b", "a\nb", "a\u2028b", "a\rb", "a\x85b", " ", "\ufeff", "\u00a0",
    "\u3000", "\u180e", "\u2009", "\t\n", "foo", "a foo b", "foofoo", "\n", "😀", "x😀", "aa",
    "aab", "aaa", "a{,2}", "]", "}", "-", "5", "z", "A", "/", "\u0000", "\x08", "00-950",
    "00-9500", "Łódź", "Zażółć", "łódź", "$", "a\n", "١٢٣", "11", "12", "abcd", "+48601234567",
    "601234567", "żółw",
]  # fmt: skip
# Tokens random patterns are made of: each is JavaScript syntax, together often not.
PATTERN_TOKENS = [
    "a", "b", "ó", ".", "\\s", "\\S", "\\d", "\\w", "\\W", "\\b", "\\B", "^", "$", "[^a]",
    "[a-c]", "[\\s\\d]", "[^\\S]", "(", ")", "(?:", "(?=", "(?!", "(?<=", "|", "*", "+", "?",
    "{2}", "{1,}", "{,2}", "\\1", "[^]", "[]", "\\u00f3", "\\x41", "😀", "\\n", "\\cJ", "]",
    "}", "{", "\\.", "\\-", "-", "\\0", "(?<g>", "\\k<g>", "*?", "\ufeff",
]  # fmt: skip


def _random_patterns(count: int) -> list[str]:
    # Fixed seed: the same patterns on every run, so a failure can be reproduced.
    chooser = random.Random(20261122)
    return ["".join(chooser.choices(PATTERN_TOKENS, k=chooser.randint(1, 7))) for _ in range(count)]


def _pattern_problems(patterns: list[str], answers: list[dict[str, Any]]) -> list[str]:
    problems = []
    for pattern, answer in zip(patterns, answers, strict=True):
        try:
            compiled = compile_pattern(pattern)
        except JsSyntaxError as error:
            if answer["error"] is None:
                problems.append(f"{pattern!r}: refused as not JavaScript ({error}), JS takes it")
            continue
        except JsUnsupportedError:
            # Refused when the form is checked (below): never judged differently.
            if check_form(_pattern_form(pattern)) == []:
                problems.append(f"{pattern!r}: not evaluated, yet the form check lets it by")
            continue
        if answer["error"] is not None:
            problems.append(f"{pattern!r}: JavaScript refuses it ({answer['error']}), we do not")
            continue
        for text, expected in zip(INPUTS, answer["results"], strict=True):
            if compiled.test(text) is not expected:
                problems.append(f"{pattern!r} on {text!r}: we say {not expected}")
    return problems


def _pattern_form(pattern: str) -> dict[str, Any]:
    return {
        "id": "p",
        "components": [{"type": "textfield", "key": "a", "validate": {"pattern": pattern}}],
    }


async def test_patterns_are_tested_as_javascript_tests_them(formjs: FormJs) -> None:
    patterns = [*PATTERNS, *_random_patterns(400)]
    answers = await formjs.ask(
        "regex", [{"source": p, "flags": "", "inputs": INPUTS} for p in patterns]
    )
    problems = _pattern_problems(patterns, answers)
    assert not problems, f"{len(problems)} disagreements:\n" + "\n".join(problems[:40])
    # The comparison is not vacuous: most written patterns are evaluated, not refused.
    evaluated = 0
    for pattern in PATTERNS:
        try:
            compile_pattern(pattern)
            evaluated += 1
        except JsRegexError:
            continue
    assert evaluated >= 45


# Text fields and text areas, judged by Form.validate().

TEXT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("textfield", {"pattern": r"^\d+$"}, "12"),
    ("textfield", {"pattern": r"^\d+$"}, " 12"),
    ("textfield", {"pattern": r"^\d+$"}, "12 "),
    ("textfield", {"pattern": r"^\d+$"}, "١٢"),
    ("textfield", {"pattern": r"^a.b$"}, "a\nb"),
    ("textarea", {"pattern": r"^a.b$"}, "a\nb"),
    ("textarea", {"pattern": r"^a.b$"}, "a\u2028b"),
    ("textarea", {"pattern": r"^a.b$"}, "a\x85b"),
    ("textarea", {"pattern": r"^a$"}, "a\n"),
    ("textfield", {"pattern": r"^\s+$"}, "\ufeff"),
    ("textfield", {"pattern": r"^\S+$"}, "\ufeff"),
    ("textfield", {"pattern": r"^\S+$"}, "\u180e"),
    ("textfield", {"pattern": r"^(?<d>\d)\k<d>$"}, "11"),
    ("textfield", {"pattern": r"^(?<d>\d)\k<d>$"}, "12"),
    ("textfield", {"pattern": r"^[^]$"}, "x"),
    ("textfield", {"pattern": r"^.$"}, "😀"),
    ("textfield", {"pattern": r"^..$"}, "😀"),
    ("textfield", {"pattern": r"^\w+$"}, "żółw"),
    ("textfield", {"minLength": 3}, "😀a"),
    ("textfield", {"maxLength": 2}, "😀a"),
    ("textfield", {"maxLength": 2}, "żó"),
    ("textfield", {"maxLength": 3}, " ab "),
    ("textfield", {"minLength": 2}, "\ufeffa\ufeff"),
    ("textfield", {"minLength": 3}, "ab\u00a0"),
    ("textfield", {"minLength": 3}, "abc"),
    ("textarea", {"maxLength": 3}, "a\nbc"),
    ("textfield", {"minLength": 2, "pattern": "^a"}, "a"),
    ("textfield", {"required": True}, ""),
    ("textfield", {"required": True}, "a"),
    ("textfield", {"validationType": "email"}, "jan@example.com"),
    ("textfield", {"validationType": "email"}, " jan@example.com"),
    ("textfield", {"validationType": "phone"}, "+48601234567"),
    ("textfield", {"validationType": "phone"}, " +48601234567"),
    ("textfield", {"validationType": "phone"}, "+48601234567 "),
    ("textfield", {"maxLength": "=limit"}, "abcd"),
    ("textfield", {"maxLength": "=limit"}, "abc"),
]


def _text_schema(kind: str, rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "default",
        "id": "rules",
        "components": [
            {"type": kind, "id": "Field_a", "key": "a", "label": "A", "validate": rules}
        ],
    }


def _panel_error(schema: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    variables = {k: v for k, v in data.items() if k != "a"}
    _answers, errors = read_submission(schema, {"a": data["a"]}, variables, TODAY)
    return errors.get("a")


async def test_text_rules_judge_as_form_js_validates(formjs: FormJs) -> None:
    cases = [
        {"schema": _text_schema(kind, rules), "data": {"a": value, "limit": 3}}
        for kind, rules, value in TEXT_CASES
    ]
    answers = await formjs.ask("validate", cases)
    problems = []
    for (kind, rules, value), case, answer in zip(TEXT_CASES, cases, answers, strict=True):
        theirs = answer.get("Field_a") or []
        ours = _panel_error(case["schema"], case["data"])
        if (ours is None) != (not theirs):
            problems.append(f"{kind} {rules} {value!r}: form-js {theirs}, panel {ours!r}")
    assert not problems, "\n".join(problems)
    # Both outcomes occur, so the comparison says something.
    assert 8 < sum(bool(a.get("Field_a")) for a in answers) < len(answers) - 8


async def test_a_required_text_of_spaces_alone_is_not_an_answer(formjs: FormJs) -> None:
    """The one departure: form-js takes "   " as given, the panel keeps answers trimmed and
    so would keep nothing for a required field; it asks for the answer instead."""
    schema = _text_schema("textfield", {"required": True})
    (answer,) = await formjs.ask("validate", [{"schema": schema, "data": {"a": "   "}}])
    assert answer == {}
    with use_locale("en"):
        assert _panel_error(schema, {"a": "   "}) == "Enter “A”."


# Templates, as feelers evaluates them in form-js' expression context.

DATA: dict[str, Any] = {
    "name": "Ann",
    "title": "T",
    "items": [1, 2, 3],
    "people": [
        {"name": "Bob", "age": 30, "tags": ["x", "y"]},
        {"name": "Cy", "age": None, "tags": []},
    ],
    "m": {"x": 1, "y": "two"},
    "n": 5,
    "zero": 0,
    "empty": [],
    "yes": True,
    "no": False,
    "nothing": None,
    "s": "abc",
    "big": 1e21,
    "half": 0.5,
}
TEMPLATES: list[str | tuple[str, bool]] = [
    "Hello {{name}}",
    "{{name}}{{name}}",
    "{{ name }}",
    "{{=name}}",
    "{{}}",
    "{{=}}",
    "{{ }}",
    "=name",
    "=count(items)",
    "=items",
    "=m",
    "=1.5 + 1",
    "=nothing",
    "=1 < true",
    "{{items}}",
    "{{m}}",
    "{{people}}",
    "{{missing}}",
    "{{missing.x}}",
    "{{n}}",
    "{{big}}",
    "{{half}}",
    "{{yes}}",
    "{{nothing}}",
    '{{s + "!"}}',
    '{{if yes then "a" else "b"}}',
    "{{1 < true}}",
    "a {{1 < true}} b",
    "{{s) + (s}}",
    "{{#if yes}}shown{{/if}}",
    "{{#if no}}hidden{{/if}}",
    "{{#if zero}}zero{{/if}}",
    "{{#if empty}}empty{{/if}}",
    '{{#if ""}}blank{{/if}}',
    "{{#if missing}}missing{{/if}}",
    "{{#if items}}items{{/if}}",
    "{{#if m}}context{{/if}}",
    "{{#if count(items) > 1}}many{{/if}}",
    "{{#if 1 < true}}error{{/if}} after",
    "{{#if yes}}\nline\n{{/if}}\nafter",
    "{{#if no}}\nline\n{{/if}}\nafter",
    "{{#if yes}}line{{/if}}\nafter",
    "a{{#if yes}}b{{/if}}c",
    "{{#if yes}}{{#if no}}x{{/if}}y{{/if}}",
    "{{#loop items}}[{{this}}]{{/loop}}",
    "{{#loop people}}{{name}} ({{age}}){{/loop}}",
    "{{#loop people}}{{parent.title}}-{{name}}\n{{/loop}}",
    "{{#loop people}}{{title}}|{{/loop}}",
    "{{#loop missing}}x{{/loop}}",
    "{{#loop n}}[{{this}}]{{/loop}}",
    "{{#loop m}}{{x}}{{/loop}}",
    "{{#loop people}}{{#loop tags}}{{this}}{{parent.name}}{{/loop}};{{/loop}}",
    "{{#loop items}}\n- {{this}}\n{{/loop}}",
    "{{#loop items}}{{#if this > 1}}{{this}}{{/if}}{{/loop}}",
    "{{#loop [[1, 2], [3]]}}{{this}}{{/loop}}",
    "Total: {{sum(items)}} zł",
    "{{string length(s)}} {{upper case(name)}}",
    "{{flatten([[1], [2, [3]]])}} {{concatenate(items, [9])}}",
    '{{string join(["a", "b"], ", ")}} {{matches(s, "^a")}}',
    "{{this.name}} {{_this_.name}} {{parent}} {{i}}",
    "line1 {{name}}\nline2 {{s}}",
    ("{{#if n}}x{{/if}}", True),
    ("{{#loop n}}x{{/loop}}", True),
    ("{{#if yes}}x{{/if}}{{#loop items}}{{this}}{{/loop}}", True),
    # What form-js does not read as a template is shown as written.
    "no template",
    "a { b } c",
    "{{ spans \n two lines }}",
]


async def test_templates_evaluate_as_feelers_in_form_js(formjs: FormJs) -> None:
    cases: list[dict[str, Any]] = [
        {"template": t, "strict": False}
        if isinstance(t, str)
        else {"template": t[0], "strict": t[1]}
        for t in TEMPLATES
    ]
    answers = await formjs.ask("template", [{**case, "data": DATA} for case in cases])
    context = expression_context(DATA, Scope())
    problems = []
    for case, answer in zip(cases, answers, strict=True):
        text = case["template"]
        if is_template(text) != answer["template"]:
            problems.append(f"{text!r}: is it a template? form-js {answer['template']}")
            continue
        if not answer["template"]:
            continue
        ours = render(parse_template(text), context, strict=case["strict"])
        # Where form-js shows its debug marker, the panel shows nothing.
        theirs = answer["text"].replace(DEBUG_MARK, "")
        if ours != theirs:
            problems.append(f"{text!r}: panel {ours!r}, form-js {answer['text']!r}")
    assert not problems, "\n".join(problems)
    assert sum(DEBUG_MARK in a["text"] for a in answers) >= 4


# Labels, descriptions, adorners and images on the rendered form.

RENDERED: list[dict[str, Any]] = [
    {
        "type": "textfield",
        "id": "Field_1",
        "key": "a",
        "label": "Hello {{name}}\nsecond line",
        "description": "You have {{count(items)}} items{{#if yes}}, {{name}}{{/if}}",
        "appearance": {"prefixAdorner": "{{s}}", "suffixAdorner": "zł {{n}}"},
    },
    {
        "type": "number",
        "id": "Field_2",
        "key": "b",
        "label": "=upper case(name)",
        "appearance": {"suffixAdorner": "=n * 2"},
    },
    {"type": "textfield", "id": "Field_3", "key": "c", "label": "Plain\nlabel"},
    {"type": "checkbox", "id": "Field_4", "key": "d", "label": "I, {{name}}, agree"},
    {"type": "textarea", "id": "Field_5", "key": "e", "label": "{{1 < true}}Notes"},
    {"type": "select", "id": "Field_6", "key": "f", "label": "{{#loop items}}{{this}}{{/loop}}"},
    {"type": "image", "id": "Image_1", "source": "{{logo}}", "alt": "Logo of {{name}}"},
    {"type": "image", "id": "Image_2", "source": "=logo", "alt": "=name + 1"},
    {"type": "image", "id": "Image_3", "source": "{{#if yes}}{{logo}}{{/if}}", "alt": "=name"},
]


def _only(nodes: list[Any]) -> Any:
    assert len(nodes) == 1, nodes
    return nodes[0]


async def test_labels_descriptions_adorners_and_images_show_what_form_js_shows(
    formjs: FormJs,
) -> None:
    data = {**DATA, "logo": "data:image/png;base64,iVBORw0KGgo="}
    schemas = [{"type": "default", "id": "shown", "components": [c]} for c in RENDERED]
    answers = await formjs.ask("render", [{"schema": s, "data": data} for s in schemas])
    for component, schema, answer in zip(RENDERED, schemas, answers, strict=True):
        # Where form-js shows its debug marker, the panel shows nothing.
        shown: dict[str, Any] = {
            key: value.replace(DEBUG_MARK, "") if isinstance(value, str) else value
            for key, value in answer[component["id"]].items()
        }
        node = _only(page_fields(schema, values={}, errors={}, variables=data, today=TODAY))
        if component["type"] == "image":
            assert isinstance(node, ContentNode)
            image = {key: value.replace(DEBUG_MARK, "") for key, value in shown["image"].items()}
            assert {"src": node.source, "alt": node.alt} == image, component
            continue
        assert isinstance(node, FieldNode)
        assert node.label == shown["label"], component
        assert node.description == (shown["description"] or ""), component
        assert [a for a in (node.prefix, node.suffix) if a] == shown["adorners"], component


async def test_a_group_label_is_a_template_too(formjs: FormJs) -> None:
    group = {
        "type": "group",
        "id": "Group_1",
        "label": "Household of {{name}}",
        "components": [{"type": "textfield", "id": "Field_x", "key": "x", "label": "X"}],
    }
    schema = {"type": "default", "id": "grouped", "components": [group]}
    (answer,) = await formjs.ask("render", [{"schema": schema, "data": DATA}])
    node = _only(page_fields(schema, values={}, errors={}, variables=DATA, today=TODAY))
    assert isinstance(node, GroupNode)
    assert node.label == answer["Group_1"]["label"] == "Household of Ann"


# Markdown in text blocks.

MARKDOWN = [
    "a &gt; b &amp; c &lt;d&gt; &copy; &#42;not emphasis&#42; &#x41; AT&T &nosuch;",
    "Use `x &gt; 1` or ``a `b` c`` and `` ` `` here.",
    "An image ![the logo](data:image/png;base64,iVBORw0KGgo=) inline.",
    "![alt &amp; more](data:image/gif;base64,R0lGODlhAQABAAAAACw=)",
    "```\nx < 1 && y\n\n  indented\n```",
    "~~~python\nprint('<hi>')\n~~~",
    "Before\n\n```js\nlet a = `b`;\n```\n\nAfter **bold** and *it*.",
    "- item `code`\n- ![i](data:image/png;base64,iVBORw0KGgo=)",
    "```\nnever closed\n*not emphasis*",
    "Hello {{name}}: `{{s}}` and **{{n}}**",
    "[a link](https://example.com/a?b=1&amp;c=2) and `[not](a link)`",
]

_SHAPE_TAGS = frozenset({"code", "pre", "img", "a", "strong", "em", "li"})
# Blocks, which separate the words before and after them.
_BLOCK_TAGS = frozenset({"p", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"})


class _Shape(HTMLParser):
    """What matters of rendered markdown: the text, and each code, image, link and
    emphasis with the text inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[tuple[str, int]] = []
        self.elements: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.text.append(" ")
        if tag == "img":
            values = dict(attrs)
            self.elements.append(("img", f"{values.get('src')} | {values.get('alt')}"))
        elif tag in _SHAPE_TAGS:
            self.open.append((tag, len(self.text)))

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1][0] == tag:
            _tag, start = self.open.pop()
            inner = "".join(self.text[start:])
            # Code keeps its spacing; elsewhere spacing is layout.
            kept = inner if tag in {"code", "pre"} else " ".join(inner.split())
            self.elements.append((tag, kept))
        if tag in _BLOCK_TAGS:
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def shape(markup: str) -> tuple[str, list[tuple[str, str]]]:
    parser = _Shape()
    parser.feed(markup)
    parser.close()
    return " ".join("".join(parser.text).split()), sorted(parser.elements)


async def test_markdown_shows_code_images_and_characters_as_form_js_does(
    formjs: FormJs,
) -> None:
    schemas = [
        {"type": "default", "id": "md", "components": [{"type": "text", "id": "Text_1", "text": t}]}
        for t in MARKDOWN
    ]
    answers = await formjs.ask("render", [{"schema": s, "data": DATA} for s in schemas])
    for text, schema, answer in zip(MARKDOWN, schemas, answers, strict=True):
        node = _only(page_fields(schema, values={}, errors={}, variables=DATA, today=TODAY))
        assert isinstance(node, ContentNode)
        (theirs,) = answer["$text"]
        assert shape(node.html) == shape(theirs), (text, node.html, theirs)
    # Characters are not escaped twice: "&gt;" shows as ">", not as "&gt;".
    first = _only(page_fields(schemas[0], values={}, errors={}, variables=DATA, today=TODAY))
    assert isinstance(first, ContentNode)
    assert "a &gt; b &amp; c" in first.html and "&amp;gt;" not in first.html
    assert html.unescape(first.html).startswith("<p>a > b & c <d>")
