"""What a manual page calls its NAME section, in the languages its translations are written in."""

from __future__ import annotations

NAME_HEADINGS = frozenset(
    {
        "NAME",  # English, German's older pages
        "BEZEICHNUNG",  # German
        "NOM",  # French, Catalan
        "NOMBRE",  # Spanish
        "NOME",  # Italian, Portuguese
        "NAAM",  # Dutch
        "NAZWA",  # Polish
        "NAMN",  # Swedish
        "NAVN",  # Danish, Norwegian
        "NIMI",  # Finnish
        "JMÉNO",  # Czech
        "NÉV",  # Hungarian
        "NUME",  # Romanian
        "İSİM",  # Turkish
        "ΟΝΟΜΑ",  # Greek
        "ИМЯ",  # Russian
        "НАЗВА",  # Ukrainian
        "ИМЕ",  # Serbian
        "TÊN",  # Vietnamese
        "NAMA",  # Indonesian
        "NOMO",  # Esperanto
        "名前",  # Japanese
        "名称",  # Chinese, Japanese
        "名字",  # Chinese
        "이름",  # Korean
    }
)
"""A page's first section heading, upper case, as `man` prints it in each language: the line
after it is the page's title ("dpkg-parsechangelog - analisa ficheiros ...")."""
