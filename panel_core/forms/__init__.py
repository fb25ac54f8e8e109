"""Camunda Forms (form-js schemas) rendered and checked on the server.

Every form-js component type is covered: inputs (text field, text area, number, checkbox,
checklist, radio, select, tag list, date/time), expression fields computed with FEEL,
groups and dynamic lists, and text, HTML, image, table, separator and spacer blocks. File
pickers are inputs whose answers come from the upload code. Iframes are refused when a
form is checked; submit and reset buttons are not shown (the page has its own).

* :mod:`~panel_core.forms.schema` - component kinds, value paths, scopes, option lists;
* :mod:`~panel_core.forms.values` - one value's conversion and rules, as form-js has them;
* :mod:`~panel_core.forms.submission` - reading a whole submission, dynamic-list actions;
* :mod:`~panel_core.forms.view` - the nodes the task page renders;
* :mod:`~panel_core.forms.markup` - markdown, sanitised HTML, image sources;
* :mod:`~panel_core.forms.templates` - templating (``{{ … }}``) in texts, as feelers does it;
* :mod:`~panel_core.forms.files` - a file picker's ``accept``;
* :mod:`~panel_core.forms.texts` - translations from custom properties;
* :mod:`~panel_core.forms.checks` - what ``check_form`` refuses beyond FEEL.
"""

from __future__ import annotations

from panel_core.forms.markup import safe_image_source, sanitise_html, text_html
from panel_core.forms.schema import (
    FILE_TYPES,
    FORM_ZONE,
    INPUT_TYPES,
    KEYED_TYPES,
    MAX_ROWS,
    SUPPORTED_TYPES,
    Option,
    form_today,
    input_components,
    options_of,
    variable_names,
)
from panel_core.forms.submission import (
    FOCUS_KEY,
    apply_list_action,
    hidden_keys,
    list_action,
    process_variables,
    read_submission,
    submitted_fields,
)
from panel_core.forms.texts import localise
from panel_core.forms.values import EMAIL_PATTERN, PHONE_PATTERN
from panel_core.forms.values import convert as _convert
from panel_core.forms.view import (
    ContentNode,
    FieldNode,
    GroupNode,
    ListNode,
    Node,
    OptionNode,
    RowNode,
    TableNode,
    hidden_now,
    page_components,
    page_fields,
)

__all__ = [
    "EMAIL_PATTERN",
    "FILE_TYPES",
    "FOCUS_KEY",
    "FORM_ZONE",
    "INPUT_TYPES",
    "KEYED_TYPES",
    "MAX_ROWS",
    "PHONE_PATTERN",
    "SUPPORTED_TYPES",
    "ContentNode",
    "FieldNode",
    "GroupNode",
    "ListNode",
    "Node",
    "Option",
    "OptionNode",
    "RowNode",
    "TableNode",
    "_convert",
    "apply_list_action",
    "form_today",
    "hidden_keys",
    "hidden_now",
    "input_components",
    "list_action",
    "localise",
    "options_of",
    "page_components",
    "page_fields",
    "process_variables",
    "read_submission",
    "safe_image_source",
    "sanitise_html",
    "submitted_fields",
    "text_html",
    "variable_names",
]
