"""The works a report cites: readable titles for paper text and BibTeX entries for ``--bib``.

Source strings in the data tables are precise but written for a data file ("Carbon intensity
of electricity generation (grapher 'carbon-intensity-electricity'), ..."); a paper wants a
title and a citation. :func:`readable` maps a source string to a title a reader can follow,
:func:`cited` lists the works a report relies on and :func:`bibtex` writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reference:
    """A cited work: ``key`` (BibTeX key), ``title`` (readable, for text), ``match`` (strings
    that identify it inside a source string), ``entry`` (BibTeX type) and ``fields``."""

    key: str
    title: str
    match: tuple[str, ...]
    entry: str = "misc"
    fields: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title}


PATTERSON = Reference(
    "patterson2021carbon",
    "Patterson et al. (2021), Carbon Emissions and Large Neural Network Training",
    ("Patterson",),
    "article",
    {
        "author": "Patterson, David and Gonzalez, Joseph and Le, Quoc and Liang, Chen and "
        "Munguia, Lluis-Miquel and Rothchild, Daniel and So, David and Texier, Maud and "
        "Dean, Jeff",
        "title": "Carbon Emissions and Large Neural Network Training",
        "journal": "arXiv preprint arXiv:2104.10350",
        "year": "2021",
    },
)
DODGE = Reference(
    "dodge2022measuring",
    "Dodge et al. (2022), Measuring the Carbon Intensity of AI in Cloud Instances",
    ("Dodge",),
    "inproceedings",
    {
        "author": "Dodge, Jesse and Prewitt, Taylor and Tachet des Combes, Remi and Odmark, "
        "Erika and Schwartz, Roy and Strubell, Emma and Luccioni, Alexandra Sasha and Smith, "
        "Noah A. and DeCario, Nicole and Buchanan, Will",
        "title": "Measuring the Carbon Intensity of {AI} in Cloud Instances",
        "booktitle": "Proceedings of the 2022 ACM Conference on Fairness, Accountability, "
        "and Transparency (FAccT)",
        "pages": "1877--1894",
        "year": "2022",
        "doi": "10.1145/3531146.3533234",
    },
)

KNOWN: tuple[Reference, ...] = (
    Reference(
        "chien2023reducing",
        "Chien et al. (2023), Reducing the Carbon Impact of Generative AI Inference (today "
        "and in 2035)",
        ("Chien et al. (2023)",),
        "inproceedings",
        {
            "author": "Chien, Andrew A. and Lin, Liuzixuan and Nguyen, Hai and Rao, Varsha and "
            "Sharma, Tristan and Wijayawardana, Rajini",
            "title": "Reducing the Carbon Impact of Generative {AI} Inference (today and in 2035)",
            "booktitle": "2nd Workshop on Sustainable Computer Systems (HotCarbon '23)",
            "year": "2023",
            "doi": "10.1145/3604930.3605705",
        },
    ),
    Reference(
        "ecoinfo_ecodiag",
        "EcoInfo (CNRS), Ecodiag: embodied footprint factors of computing equipment",
        ("EcoInfo (CNRS)",),
        "misc",
        {
            "author": "{EcoInfo (CNRS)}",
            "title": "Ecodiag: estimating the embodied footprint of computing equipment",
            "howpublished": "\\url{https://ecoinfo.cnrs.fr/ecodiag-calcul/}",
        },
    ),
    Reference(
        "owid2024intensity",
        "Our World in Data, Carbon intensity of electricity generation (Ember and Energy "
        "Institute; CC BY 4.0)",
        ("carbon-intensity-electricity", "owid-ember"),
        "misc",
        {
            "author": "{Our World in Data}",
            "title": "Carbon intensity of electricity generation, based on {Ember} and "
            "{Energy Institute}",
            "year": "2024",
            "howpublished": "\\url{https://ourworldindata.org/grapher/"
            "carbon-intensity-electricity}",
            "note": "CC BY 4.0",
        },
    ),
    Reference(
        "epa2023egrid",
        "US EPA, eGRID2023 state annual CO2e output emission rates",
        ("eGRID2023", "epa-egrid2023"),
        "misc",
        {
            "author": "{US Environmental Protection Agency}",
            "title": "Emissions \\& Generation Resource Integrated Database ({eGRID2023})",
            "year": "2025",
        },
    ),
    Reference(
        "electricitymaps2024",
        "Electricity Maps, yearly carbon intensity averages 2024 (lifecycle, "
        "consumption-based; ODbL 1.0)",
        ("Electricity Maps", "electricitymaps-2024"),
        "misc",
        {
            "author": "{Electricity Maps}",
            "title": "Yearly carbon intensity averages 2024",
            "year": "2025",
            "note": "ODbL 1.0",
        },
    ),
    Reference(
        "mee2023provincial",
        "Ministry of Ecology and Environment of China, provincial electricity CO2 emission "
        "factors 2023",
        ("Provincial electricity CO2 emission factors", "cn-mee-2023"),
        "misc",
        {
            "author": "{Ministry of Ecology and Environment of China and National Bureau of "
            "Statistics of China}",
            "title": "Provincial electricity {CO2} emission factors 2023",
            "year": "2025",
        },
    ),
    Reference(
        "aslan2018electricity",
        "Aslan et al. (2018), Electricity Intensity of Internet Data Transmission",
        ("Aslan", "aslan-2018"),
        "article",
        {
            "author": "Aslan, Joshua and Mayers, Kieren and Koomey, Jonathan G. and France, Chris",
            "title": "Electricity Intensity of Internet Data Transmission: Untangling the "
            "Estimates",
            "journal": "Journal of Industrial Ecology",
            "volume": "22",
            "number": "4",
            "pages": "785--798",
            "year": "2018",
            "doi": "10.1111/jiec.12630",
        },
    ),
    Reference(
        "krug2014understanding",
        "Krug et al. (2014), Understanding the environmental costs of fixed line networking",
        ("Krug", "krug-2014"),
        "inproceedings",
        {
            "author": "Krug, Louise and Shackleton, Mark and Saffre, Fabrice",
            "title": "Understanding the environmental costs of fixed line networking",
            "booktitle": "Proceedings of the 5th International Conference on Future Energy "
            "Systems (e-Energy)",
            "year": "2014",
        },
    ),
    Reference(
        "williams2013methodology",
        "Williams and Tang (2013), energy of electronic software distribution",
        ("Williams & Tang", "williams-tang-2013"),
        "article",
        {
            "author": "Williams, Daniel R. and Tang, Yinshan",
            "title": "Methodology to model the energy and greenhouse gas emissions of "
            "electronic software distributions",
            "journal": "Environmental Science \\& Technology",
            "year": "2013",
        },
    ),
    Reference(
        "carbontrust2021video",
        "Carbon Trust (2021), Carbon impact of video streaming",
        ("Carbon Trust", "carbon-trust-2021"),
        "techreport",
        {
            "author": "{Carbon Trust}",
            "title": "Carbon impact of video streaming",
            "institution": "Carbon Trust",
            "year": "2021",
        },
    ),
    Reference(
        "ccf2023methodology",
        "Cloud Carbon Footprint methodology",
        ("Cloud Carbon Footprint", "ccf-datacenter"),
        "misc",
        {
            "author": "{Cloud Carbon Footprint}",
            "title": "Cloud Carbon Footprint methodology",
            "year": "2023",
            "howpublished": "\\url{https://www.cloudcarbonfootprint.org/docs/methodology}",
        },
    ),
    Reference(
        "google2024environmental",
        "Google (2024), Environmental Report",
        ("2024 Environmental Report", "google-env-2024"),
        "techreport",
        {
            "author": "{Google}",
            "title": "2024 Environmental Report",
            "institution": "Google",
            "year": "2024",
        },
    ),
    Reference(
        "uptime2024survey",
        "Uptime Institute, Global Data Center Survey",
        ("Uptime", "uptime-2023", "uptime-2024"),
        "techreport",
        {
            "author": "{Uptime Institute}",
            "title": "Global Data Center Survey",
            "institution": "Uptime Institute",
            "year": "2024",
        },
    ),
    Reference(
        "epa2018vehicle",
        "US EPA (2018), Greenhouse Gas Emissions from a Typical Passenger Vehicle",
        ("Typical Passenger Vehicle",),
        "techreport",
        {
            "author": "{US Environmental Protection Agency}",
            "title": "Greenhouse Gas Emissions from a Typical Passenger Vehicle",
            "institution": "{US EPA}",
            "number": "EPA-420-F-18-008",
            "year": "2018",
        },
    ),
    Reference(
        "epa2018gasoline",
        "US EPA (2018), EPA-420-F-18-008 and 40 CFR 600.113 (gasoline)",
        ("8,887 gCO2 per US gallon",),
        "techreport",
        {
            "author": "{US Environmental Protection Agency}",
            "title": "Greenhouse Gas Emissions from a Typical Passenger Vehicle; 40 {CFR} 600.113",
            "institution": "US EPA",
            "year": "2018",
        },
    ),
    Reference(
        "eia2019residential",
        "US EIA (2019), average annual electricity use of a US residential customer",
        ("US EIA",),
        "misc",
        {
            "author": "{US Energy Information Administration}",
            "title": "How much electricity does an {American} home use?",
            "year": "2020",
        },
    ),
    PATTERSON,
    DODGE,
)

_GRAPHER = re.compile(r"\s*\(grapher '[^']*'\)")


def reference(text: str | None) -> Reference | None:
    """The known work ``text`` (a source string or a data key) names, if any.

    >>> reference("0.06 kWh/GB (Aslan, end-to-end)").key
    'aslan2018electricity'
    """
    if not text:
        return None
    for ref in KNOWN:
        if any(m in text for m in ref.match):
            return ref
    return None


def readable(text: str | None) -> str:
    """``text`` as a reader should see it: a known source by its title, anything else with
    data-file detail (grapher names) removed.

    >>> readable("Carbon intensity of electricity generation (grapher "
    ...          "'carbon-intensity-electricity'), based on Ember (Our World in Data)")[:40]
    'Our World in Data, Carbon intensity of e'
    >>> readable("given by the user")
    'given by the user'
    """
    if not text:
        return ""
    ref = reference(text)
    if ref is not None and ref.key.startswith(("owid", "epa2023", "electricitymaps", "mee")):
        return ref.title
    return _GRAPHER.sub("", text)


def cited(data: dict[str, Any]) -> list[Reference]:
    """Every work a report's text cites, in order of first use, then the two methodology
    papers (Patterson et al. 2021, Dodge et al. 2022)."""
    out: list[Reference] = []

    def add(text: str | None) -> None:
        ref = reference(text)
        if ref is not None and ref not in out:
            out.append(ref)

    for r in data["runs"]:
        if r.get("carbon"):
            add(r["carbon"].get("source"))
            add(r["carbon"].get("pue_source"))
        if r.get("federated"):
            add(r["federated"].get("network"))
        for e in r.get("equivalences") or []:
            add(e.get("source"))
    for r in data["runs"]:
        if r.get("embodied"):
            add(r["embodied"].get("source"))
    for d in data.get("untracked") or []:
        add(d.get("carbon_source"))
        add(d.get("watts_source"))
    for ref in (PATTERSON, DODGE):
        if ref not in out:
            out.append(ref)
    return out


def bibtex(refs: list[Reference]) -> str:
    """``refs`` as a BibTeX file."""
    chunks = []
    for ref in refs:
        lines = [f"@{ref.entry}{{{ref.key},"]
        lines += [f"  {k} = {{{v}}}," for k, v in ref.fields.items()]
        lines.append("}")
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n"
