"""Reference data the accounts are drawn from (Czech-ish names, places), and the hostile values."""

from __future__ import annotations

from generator.encoding import ascii_fold

# Reference data (Czech-ish names, places).  Stored already JSON-escaped where
# that matters; plain names contain no characters that need escaping.

FIRST_F = (
    "Jana Marie Eva Hana Anna Lenka Kateřina Lucie Věra Alena Petra Veronika "
    "Jaroslava Tereza Martina Michaela Jitka Helena Ludmila Zdeňka Ivana Monika "
    "Eliška Zuzana Markéta Barbora Kristýna Klára Adéla Natálie Šárka Dagmar "
    "Simona Karolína Pavla Denisa Blanka Radka Vendula Romana"
).split()
FIRST_M = (
    "Jiří Jan Petr Josef Pavel Martin Tomáš Jaroslav Miroslav Zdeněk Václav "
    "Michal František Jakub Milan Karel Lukáš David Vladimír Ondřej Ladislav "
    "Roman Stanislav Marek Radek Daniel Antonín Vojtěch Filip Adam Matěj Štěpán "
    "Dominik Aleš Řehoř Bohumil Libor Radim Vít Kryštof"
).split()
LAST_NAMES = tuple(
    tuple(p.split("/"))
    for p in (
        "Novák/Nováková Svoboda/Svobodová Novotný/Novotná Dvořák/Dvořáková "
        "Černý/Černá Procházka/Procházková Kučera/Kučerová Veselý/Veselá "
        "Horák/Horáková Němec/Němcová Marek/Marková Pospíšil/Pospíšilová "
        "Pokorný/Pokorná Hájek/Hájková Král/Králová Jelínek/Jelínková "
        "Růžička/Růžičková Beneš/Benešová Fiala/Fialová Sedláček/Sedláčková "
        "Doležal/Doležalová Zeman/Zemanová Kolář/Kolářová Navrátil/Navrátilová "
        "Čermák/Čermáková Vaněk/Vaňková Urban/Urbanová Blažek/Blažková "
        "Kříž/Křížová Kovář/Kovářová Bartoš/Bartošová Vlček/Vlčková "
        "Polák/Poláková Musil/Musilová Kopecký/Kopecká Šimek/Šimková "
        "Konečný/Konečná Malý/Malá Holub/Holubová Štěpánek/Štěpánková "
        "Šťastný/Šťastná Kadlec/Kadlecová Matoušek/Matoušková Říha/Říhová"
    ).split()
)
CITIES = (
    ("Praha", ("110", "120", "130", "140", "150", "160", "170", "180", "190")),
    ("Brno", ("602", "612", "615", "621", "625", "635")),
    ("Ostrava", ("702", "703", "708", "709")),
    ("Plzeň", ("301", "312", "323", "326")),
    ("Liberec", ("460",)),
    ("Olomouc", ("779",)),
    ("České Budějovice", ("370",)),
    ("Hradec Králové", ("500",)),
    ("Ústí nad Labem", ("400",)),
    ("Pardubice", ("530",)),
    ("Zlín", ("760",)),
    ("Havířov", ("736",)),
    ("Kladno", ("272",)),
    ("Jihlava", ("586",)),
    ("Opava", ("746",)),
    ("Frýdek-Místek", ("738",)),
    ("Teplice", ("415",)),
    ("Děčín", ("405",)),
    ("Karlovy Vary", ("360",)),
    ("Třebíč", ("674",)),
)
STREETS = (
    "Vinohradská Národní Masarykova Husova Nádražní Palackého Komenského "
    "Sokolská Lidická Jiráskova Smetanova Tyršova Havlíčkova Žižkova Školní "
    "Zahradní Polní Krátká Dlouhá Lipová Jungmannova Revoluční Pražská"
).split() + ["Na Příkopě", "U Lesa", "K Nádraží", "Pod Hájem", "Nad Stráněmi"]
DOMAINS = ("example.cz",) * 6 + ("example.com",) * 3 + ("example.net",)
NOTICE_VERSIONS = ("2025-09", "2026-01", "2026-06")
GRANT_SOURCES = ("registration", "preferences", "checkout", "app_onboarding")
WITHDRAW_SOURCES = ("preferences", "unsubscribe_link", "app_settings")
MEDIA = ("email", "email", "email", "sms", "push")
CAMPAIGN_SUFFIX = "abcdef"

# Hostile-but-valid values, planted a handful of times, deterministically.
HOSTILE_FIRST_NAME = "<script>alert(1)</script>"
HOSTILE_LAST_NAME = 'O\'Brien "Nováková", Jr.'
HOSTILE_CITY = "=cmd|' /C calc'!A0"
HOSTILE_CAMPAIGN = '=HYPERLINK("http://x","y")'
HOSTILE_SOURCE = "<img src=x onerror=alert(1)>"
HOSTILE_FIRST_POS = (1, 37)  # positions in chunk 0
HOSTILE_LAST_POS = (11,)
HOSTILE_CITY_POS = (23,)
FORCED_DELETION_POS = (2, 5, 9, 14, 21)

FIRST_F_ASCII = [ascii_fold(x) for x in FIRST_F]
FIRST_M_ASCII = [ascii_fold(x) for x in FIRST_M]
LAST_ASCII = [(ascii_fold(m), ascii_fold(f)) for m, f in LAST_NAMES]
