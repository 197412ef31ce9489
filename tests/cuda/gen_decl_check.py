#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Generate the declarations check of the CUDA backend: read kiln's own CUDA/NVRTC
# header (src/backends/cuda/cuda_decl.h) and write a C file that includes it together
# with the toolkit's cuda.h and nvrtc.h and _Static_asserts, for every declaration
# kiln makes, that it is the toolkit's:
#   X(NAME, value)                 kiln_NAME == NAME
#   typedef ... kiln_T;            sizeof/_Alignof equal; pointer and non-int integer
#                                  types compatible (int stands for toolkit enums);
#                                  function-pointer types compatible once kiln's type
#                                  names are mapped to the toolkit's
#   struct kiln_S { members }      sizeof, and each member's offset and size
#   F(name, symbol, req, (params)) CUresult (*)(params) compatible with &symbol
#   N(name, req, (params))         nvrtcResult (*)(params) compatible with &name
# It fails (exit 1) when it finds no declaration of some kind, so a change of the
# header's forms cannot silently empty the check.
#   usage: gen_decl_check.py <cuda_decl.h> <out.c>
import re
import sys


def main():
    src_path, out_path = sys.argv[1], sys.argv[2]
    text = open(src_path, encoding="utf-8").read()
    # Drop comments, join continued lines.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    joined = text.replace("\\\n", " ")

    def tk(s):  # kiln's names -> the toolkit's
        return re.sub(r"\bkiln_(\w+)", r"\1", s)

    out = []
    counts = {"constants": 0, "types": 0, "members": 0, "driver": 0, "nvrtc": 0}

    for name in re.findall(r"\bX\(\s*(\w+)\s*,", joined):
        out.append(f'_Static_assert((long long)kiln_{name} == (long long){name}, '
                   f'"kiln_{name} is not the toolkit\'s {name}");')
        counts["constants"] += 1

    for line in joined.splitlines():
        line = line.strip()
        m = re.match(r"typedef\s+(.*?)\(\s*\*\s*kiln_(\w+)\s*\)\s*\((.*)\)\s*;$", line)
        if m:  # function pointer type
            ret, name, params = m.groups()
            target = f"__typeof__(&{name[4:]})" if name.startswith("PFN_") else name
            out.append(f"typedef {tk(ret)} (*kiln_chk_{name})({tk(params)});")
            out.append(f"_Static_assert(__builtin_types_compatible_p(kiln_chk_{name}, {target}), "
                       f'"kiln_{name} is not the toolkit\'s function type");')
            counts["types"] += 1
            continue
        m = re.match(r"typedef\s+([^{};]*?)\bkiln_(\w+)\s*;$", line)
        if m:
            base, name = m.groups()
            out.append(f'_Static_assert(sizeof(kiln_{name}) == sizeof({name}), '
                       f'"kiln_{name} has another size than {name}");')
            out.append(f'_Static_assert(_Alignof(kiln_{name}) == _Alignof({name}), '
                       f'"kiln_{name} has another alignment than {name}");')
            if "*" in base:
                out.append(f"_Static_assert(__builtin_types_compatible_p(kiln_{name}, {name}), "
                           f'"kiln_{name} is not the toolkit\'s {name}");')
            elif re.search(r"\b(unsigned|long|short|char|size_t|uint\w*)\b", base):
                out.append(f"_Static_assert(__builtin_types_compatible_p(kiln_{name}, {name}), "
                           f'"kiln_{name} is not the toolkit\'s {name}");')
            # `int` stands for a toolkit enum (GCC gives those unsigned int when no value
            # is negative): size and alignment are what the calls rely on.
            counts["types"] += 1

    for m in re.finditer(r"typedef\s+struct\s+kiln_(\w+)\s*\{(.*?)\}\s*kiln_\1\s*;", joined, re.S):
        name, body = m.groups()
        out.append(f'_Static_assert(sizeof(kiln_{name}) == sizeof({name}), '
                   f'"struct kiln_{name} has another size than {name}");')
        for decl in body.split(";"):
            decl = decl.strip()
            if not decl:
                continue
            mm = re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl)
            member = mm.group(1)
            out.append(f"_Static_assert(offsetof(kiln_{name}, {member}) == offsetof({name}, {member}) && "
                       f"sizeof(((kiln_{name} *)0)->{member}) == sizeof((({name} *)0)->{member}), "
                       f'"kiln_{name}.{member} is not where the toolkit has it");')
            counts["members"] += 1
        counts["types"] += 1

    for name, symbol, params in re.findall(r"\bF\(\s*(\w+)\s*,\s*(\w+)\s*,\s*[01]\s*,\s*\((.*?)\)\s*\)", joined):
        out.append(f"_Static_assert(__builtin_types_compatible_p(CUresult (*)({tk(params)}), "
                   f'__typeof__(&{symbol})), "{name} (toolkit {symbol}): kiln declares another type");')
        counts["driver"] += 1
    for name, params in re.findall(r"\bN\(\s*(\w+)\s*,\s*[01]\s*,\s*\((.*?)\)\s*\)", joined):
        out.append(f"_Static_assert(__builtin_types_compatible_p(nvrtcResult (*)({tk(params)}), "
                   f'__typeof__(&{name})), "{name}: kiln declares another type");')
        counts["nvrtc"] += 1

    empty = [k for k, v in counts.items() if v == 0]
    if empty:
        sys.stderr.write(f"gen_decl_check: found no {', '.join(empty)} in {src_path}\n")
        return 1
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("/* Generated by tests/cuda/gen_decl_check.py from src/backends/cuda/cuda_decl.h:\n"
                " * do not edit. Compiles only if every kiln CUDA declaration is the toolkit's. */\n")
        f.write("#include <stddef.h>\n#include <stdio.h>\n#include <cuda.h>\n#include <nvrtc.h>\n")
        f.write('#include "backends/cuda/cuda_decl.h"\n\n')
        f.write("\n".join(out))
        f.write("\n\nint main(void) {\n")
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        f.write(f'  puts("kiln CUDA declarations match the toolkit: {summary}");\n  return 0;\n}}\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
