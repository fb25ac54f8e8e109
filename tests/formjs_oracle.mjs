// The reference for panel_core.forms: form-js itself (@bpmn-io/form-js-viewer, pinned in
// package.json), bundled by esbuild for Chromium in test_form_fidelity.py. Each function
// takes a list of cases and answers each with what form-js shows or reports.

import { Form, FeelersTemplating, buildExpressionContext } from '@bpmn-io/form-js-viewer';

// What form-js puts in place of a template part whose FEEL fails (FeelersTemplating).
const DEBUG_MARK = ' {{⚠}} ';

async function withForm(schema, data, read) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const form = new Form({ container });
  try {
    await form.importSchema(schema, data);
    return read(form, container);
  } finally {
    form.destroy();
    container.remove();
  }
}

// [{schema, data}] -> [{fieldId: [messages]}]: form.validate() on the imported data.
export async function validate(cases) {
  const answers = [];
  for (const { schema, data } of cases) {
    answers.push(await withForm(schema, data, (form) => form.validate()));
  }
  return answers;
}

function labelText(label) {
  if (!label) {
    return null;
  }
  const copy = label.cloneNode(true);
  copy.querySelectorAll('.fjs-asterix').forEach((mark) => mark.remove());
  return copy.textContent;
}

// [{schema, data}] -> what the page shows of each component, by component id: its label,
// description and adorners, an image's source and alternative text; and the HTML of the
// text blocks, in order.
export async function render(cases) {
  const answers = [];
  for (const { schema, data } of cases) {
    answers.push(
      await withForm(schema, data, (form, container) => {
        const shown = {};
        for (const component of schema.components) {
          const domId = `fjs-form-${form._id}-${component.id}`;
          const byId = (id) => container.querySelector(`[id="${id}"]`);
          const input = byId(domId);
          const group = input && input.closest('.fjs-input-group');
          shown[component.id] = {
            label: labelText(
              container.querySelector(`label[for="${domId}"]`) ||
                (input && input.classList.contains('fjs-form-field-label') ? input : null),
            ),
            description: byId(`${domId}-description`)?.textContent ?? null,
            adorners: group
              ? [...group.querySelectorAll('.fjs-input-adornment-text')].map((a) => a.textContent)
              : [],
            image:
              input && input.tagName === 'IMG'
                ? { src: input.getAttribute('src'), alt: input.getAttribute('alt') }
                : null,
          };
        }
        shown.$text = [...container.querySelectorAll('.fjs-form-field-text')].map((b) => b.innerHTML);
        return shown;
      }),
    );
  }
  return answers;
}

// [{template, data, strict}] -> the text feelers makes of the template in form-js' context
// for the top level of a form with these data.
export function template(cases) {
  const templating = new FeelersTemplating();
  return cases.map(({ template: source, data, strict }) => {
    const context = buildExpressionContext({ data, this: data, parent: null, i: [] });
    if (!templating.isTemplate(source)) {
      return { template: false, text: source };
    }
    const text = templating.evaluate(source, context, {
      debug: true,
      strict: !!strict,
      buildDebugString: () => DEBUG_MARK,
    });
    return { template: true, text };
  });
}

// [{source, flags, inputs}] -> [{error, results}]: new RegExp(source, flags).test(input),
// as form-js' Validator tests validate.pattern.
export function regex(cases) {
  return cases.map(({ source, flags, inputs }) => {
    try {
      const expression = new RegExp(source, flags);
      return { error: null, results: inputs.map((input) => expression.test(input)) };
    } catch (error) {
      return { error: String(error), results: [] };
    }
  });
}
