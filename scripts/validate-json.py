#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Validate a JSON document against a JSON Schema (draft 2020-12 or 7).

usage: validate-json.py SCHEMA [FILE|-]

Reads FILE, or standard input when FILE is '-' or absent. Exit status: 0 valid,
1 invalid (every violation is printed with its path), 2 usage or unreadable input,
77 when python3-jsonschema is not installed (ctest's skip code).
Run it with /usr/bin/python3 (Debian's, which has python3-jsonschema).
"""
import json
import sys


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) not in (2, 3) else sys.stdout)
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2
    try:
        import jsonschema
        from jsonschema import Draft7Validator, Draft202012Validator
    except ImportError as e:
        print(f"validate-json: python3-jsonschema is missing ({e}); skipping", file=sys.stderr)
        return 77

    schema_path = argv[1]
    doc_path = argv[2] if len(argv) == 3 else "-"
    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, ValueError) as e:
        print(f"validate-json: cannot read schema {schema_path}: {e}", file=sys.stderr)
        return 2
    try:
        if doc_path == "-":
            text = sys.stdin.buffer.read().decode("utf-8")
            doc_name = "<stdin>"
        else:
            with open(doc_path, encoding="utf-8") as f:
                text = f.read()
            doc_name = doc_path
        doc = json.loads(text)
    except (OSError, ValueError) as e:
        print(f"validate-json: {doc_path}: not valid JSON: {e}", file=sys.stderr)
        return 1

    draft = schema.get("$schema", "")
    cls = Draft7Validator if "draft-07" in draft else Draft202012Validator
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        print(f"validate-json: {schema_path} is not a valid schema: {e.message}", file=sys.stderr)
        return 2
    validator = cls(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        path = "/" + "/".join(str(p) for p in e.absolute_path)
        print(f"{doc_name}: {path}: {e.message}", file=sys.stderr)
    if errors:
        print(f"{doc_name}: {len(errors)} violation(s) of {schema_path}", file=sys.stderr)
        return 1
    print(f"{doc_name}: valid against {schema_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
