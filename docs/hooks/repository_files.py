"""mkdocs hook: links from the docs to repository files outside docs/ also work on the site.

Read in a checkout (or on a code host), the pages link to files beside docs/, such as
`../benchmarks/README.md` or `../../notebooks/pmoe.ipynb`. mkdocs builds only what is under docs/ and, in
strict mode, fails on those links. This hook copies every such file into the site under `repository/<its
path in the repository>` (a Markdown file becomes a page, whose own links are followed the same way; a folder
becomes a page listing its files) and points the links there, so the sources keep their repository-relative
links.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel

SITE_FOLDER = "repository"  # where the copies live in the site
DOCS_FOLDER = "docs"  # docs_dir, relative to the repository root
# a Markdown link or image target: relative, not a URL, an e-mail address or an in-page anchor
LINK = re.compile(r"(\]\()(?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)")


def _repository_path(src_uri: str) -> str:
    """Where a site file's source lies, relative to the repository root."""
    if src_uri.startswith(SITE_FOLDER + "/"):
        return src_uri[len(SITE_FOLDER) + 1 :].removesuffix("/index.md")
    return posixpath.join(DOCS_FOLDER, src_uri)


def _link_target(src_uri: str, target: str) -> str | None:
    """The repository path that a relative link from a site file points at, or None (an anchor, or a path
    above the repository root)."""
    path = target.partition("#")[0]
    if not path:
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(_repository_path(src_uri)), path))
    return None if resolved.startswith("..") else resolved


def _in_docs(repository_path: str) -> bool:
    return repository_path == DOCS_FOLDER or repository_path.startswith(DOCS_FOLDER + "/")


def _site_uri(repository_path: str, root: Path) -> str:
    """The site file that stands for a repository file or folder."""
    if _in_docs(repository_path):
        return repository_path[len(DOCS_FOLDER) + 1 :]
    suffix = "/index.md" if (root / repository_path).is_dir() else ""
    return f"{SITE_FOLDER}/{repository_path}{suffix}"


def _folder_listing(repository_path: str, root: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in (root / repository_path).iterdir()
                   if not p.name.startswith("."))
    return f"# `{repository_path}/`\n\n" + "".join(f"- [`{name}`]({name})\n" for name in names)


def _copy(config, site_uri: str, **source) -> File:
    # reached through links, so a copy need not be in the navigation (strict mode warns of omitted pages)
    return File.generated(config, site_uri, inclusion=InclusionLevel.NOT_IN_NAV, **source)


def on_files(files: Files, config) -> Files:
    """Add the repository files that the pages link to, and the files that those link to in turn."""
    root = Path(config.config_file_path).parent
    pending = [page.src_uri for page in files.documentation_pages()]
    while pending:
        src_uri = pending.pop()
        source = files.get_file_from_path(src_uri)
        text = source.content_string
        for _, target in LINK.findall(text):
            repository_path = _link_target(src_uri, target)
            if repository_path is None or _in_docs(repository_path) or not (root / repository_path).exists():
                continue  # inside docs/, or missing: mkdocs' own link check reports it
            site_uri = _site_uri(repository_path, root)
            if files.get_file_from_path(site_uri) is not None:
                continue
            if site_uri.endswith("/index.md"):
                added = _copy(config, site_uri, content=_folder_listing(repository_path, root))
                for path in sorted((root / repository_path).iterdir()):
                    file_uri = f"{SITE_FOLDER}/{repository_path}/{path.name}"
                    listed = path.is_file() and not path.name.startswith(".")
                    if listed and files.get_file_from_path(file_uri) is None:
                        files.append(_copy(config, file_uri, abs_src_path=str(path)))
            else:
                added = _copy(config, site_uri, abs_src_path=str(root / repository_path))
            files.append(added)
            if added.is_documentation_page():
                pending.append(site_uri)
    return files


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    """Point each link to a repository file outside docs/ at that file's copy in the site (and each link of a
    copy into docs/ at that page)."""
    root = Path(config.config_file_path).parent
    page_folder = posixpath.dirname(page.file.src_uri)

    def relink(match: re.Match) -> str:
        opening, target = match.groups()
        repository_path = _link_target(page.file.src_uri, target)
        if repository_path is None or not (root / repository_path).exists():
            return match.group(0)  # mkdocs' own link check reports a missing target
        anchor = target.partition("#")[2]
        site_target = posixpath.relpath(_site_uri(repository_path, root), page_folder or ".")
        return opening + site_target + (f"#{anchor}" if anchor else "")

    return LINK.sub(relink, markdown)
