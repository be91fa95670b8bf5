"""The works a report cites: readable titles for paper text and BibTeX entries for ``--bib``.

Source strings in the data tables are precise but written for a data file ("Carbon intensity
of electricity generation (grapher 'carbon-intensity-electricity'), ..."); a paper wants a
title and a citation. :func:`readable` maps a *source string* (a ``source`` field of the
report, never a sentence that happens to name one) to the title a reader can follow;
:func:`cited` lists the works a report relies on and :func:`bibtex` writes them.

Every entry is complete for the three bibliography styles papers use (``plain``, ``IEEEtran``,
``ACM-Reference-Format``): a URL (``url``, printed by the last two), a year, an author or
institution, and the fields its entry type needs. Titles have no parentheses, so that a source
named inside parentheses never nests them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACM = {"publisher": "Association for Computing Machinery", "address": "New York, NY, USA"}


@dataclass(frozen=True)
class Reference:
    """A cited work: ``key`` (BibTeX key), ``title`` (for text: readable, no parentheses),
    ``short`` (its author, for a sentence, followed by the figure's year: "US EPA eGRID"),
    ``match`` (strings that identify it inside a source string), ``entry`` (BibTeX type) and
    ``fields``."""

    key: str
    title: str
    short: str
    match: tuple[str, ...]
    entry: str = "misc"
    fields: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title}


def _web(key: str, text: str, brief: str, match: tuple[str, ...], /, **fields: str) -> Reference:
    """A web page or data set (``@misc``): ``howpublished`` says which, ``url`` where."""
    return Reference(key, text, brief, match, "misc", fields)


PATTERSON = Reference(
    "patterson2021carbon",
    "Patterson et al. 2021, Carbon Emissions and Large Neural Network Training",
    "Patterson et al. 2021",
    ("Patterson", "patterson-2021"),
    "misc",
    {
        "author": "Patterson, David and Gonzalez, Joseph and Le, Quoc and Liang, Chen and "
        "Munguia, Lluis-Miquel and Rothchild, Daniel and So, David and Texier, Maud and "
        "Dean, Jeff",
        "title": "Carbon Emissions and Large Neural Network Training",
        "howpublished": "arXiv preprint",
        "year": "2021",
        "eprint": "2104.10350",
        "archivePrefix": "arXiv",
        "primaryClass": "cs.LG",
        "doi": "10.48550/arXiv.2104.10350",
        "url": "https://arxiv.org/abs/2104.10350",
    },
)
DODGE = Reference(
    "dodge2022measuring",
    "Dodge et al. 2022, Measuring the Carbon Intensity of AI in Cloud Instances",
    "Dodge et al. 2022",
    ("Dodge",),
    "inproceedings",
    {
        "author": "Dodge, Jesse and Prewitt, Taylor and Tachet des Combes, Remi and Odmark, "
        "Erika and Schwartz, Roy and Strubell, Emma and Luccioni, Alexandra Sasha and Smith, "
        "Noah A. and DeCario, Nicole and Buchanan, Will",
        "title": "Measuring the Carbon Intensity of {AI} in Cloud Instances",
        "booktitle": "Proceedings of the 2022 ACM Conference on Fairness, Accountability, "
        "and Transparency",
        "series": "FAccT '22",
        "pages": "1877--1894",
        "year": "2022",
        **ACM,
        "doi": "10.1145/3531146.3533234",
        "url": "https://doi.org/10.1145/3531146.3533234",
    },
)

KNOWN: tuple[Reference, ...] = (
    # --- grid intensity ---------------------------------------------------------------------
    _web(
        "owid2024intensity",
        "Our World in Data, Carbon intensity of electricity generation, based on Ember and "
        "the Energy Institute",
        "Our World in Data",
        ("carbon-intensity-electricity", "owid-ember"),
        author="{Our World in Data}",
        title="Carbon intensity of electricity generation, based on {Ember} and the "
        "{Energy Institute}",
        howpublished="Online data set",
        year="2024",
        url="https://ourworldindata.org/grapher/carbon-intensity-electricity",
        note="CC BY 4.0",
    ),
    _web(
        "epa2023egrid",
        "US EPA, eGRID2023: Emissions and Generation Resource Integrated Database",
        "US EPA eGRID",
        ("eGRID2023", "epa-egrid2023"),
        author="{US Environmental Protection Agency}",
        title="Emissions \\& Generation Resource Integrated Database ({eGRID2023})",
        howpublished="Online data set, state annual CO$_2$e total output emission rates",
        year="2025",
        url="https://www.epa.gov/egrid",
    ),
    _web(
        "electricitymaps2024",
        "Electricity Maps, yearly carbon intensity averages 2024, lifecycle and consumption-based",
        "Electricity Maps",
        ("Yearly carbon intensity averages", "electricitymaps-2024"),
        author="{Electricity Maps}",
        title="Yearly carbon intensity averages 2024",
        howpublished="Online data set, lifecycle, consumption-based",
        year="2025",
        url="https://www.electricitymaps.com/data-portal",
        note="ODbL 1.0",
    ),
    _web(
        "mee2023provincial",
        "Ministry of Ecology and Environment of China, provincial electricity CO2 emission "
        "factors 2023",
        "China MEE",
        ("Provincial electricity CO2 emission factors", "cn-mee-2023"),
        author="{Ministry of Ecology and Environment of China and National Bureau of "
        "Statistics of China}",
        title="Provincial electricity {CO$_2$} emission factors 2023",
        howpublished="Announcement 2025 No. 47",
        year="2025",
        url="https://www.mee.gov.cn/",
    ),
    _web(
        "google2024regioncarbon",
        "Google Cloud, carbon-free energy and grid carbon intensity of Google Cloud regions 2024",
        "Google Cloud",
        ("Carbon free energy for Google Cloud regions", "google-region-carbon-2024"),
        author="{Google Cloud}",
        title="Carbon free energy for {Google Cloud} regions, 2024",
        howpublished="Online data set, location-based grid carbon intensity",
        year="2025",
        url="https://github.com/GoogleCloudPlatform/region-carbon-info",
        note="Apache-2.0",
    ),
    # --- intensity time series --------------------------------------------------------------
    _web(
        "neso2023carbonintensity",
        "NESO Carbon Intensity API",
        "NESO Carbon Intensity API",
        ("Carbon Intensity API", "neso-gb-2023"),
        author="{National Energy System Operator}",
        title="Carbon Intensity {API}",
        howpublished="Online data service",
        year="2023",
        url="https://carbonintensity.org.uk/",
        note="CC BY 4.0",
    ),
    _web(
        "electricitymaps2024api",
        "Electricity Maps API, carbon intensity history",
        "Electricity Maps",
        ("Electricity Maps, zone",),
        author="{Electricity Maps}",
        title="Electricity Maps {API}: carbon intensity history",
        howpublished="Online data service",
        year="2024",
        url="https://www.electricitymaps.com/",
    ),
    _web(
        "watttime2024api",
        "WattTime API, marginal operating emissions rate",
        "WattTime",
        ("WattTime",),
        author="{WattTime}",
        title="{WattTime} {API}: marginal operating emissions rate",
        howpublished="Online data service",
        year="2024",
        url="https://watttime.org/",
    ),
    # --- PUE --------------------------------------------------------------------------------
    Reference(
        "google2024environmental",
        "Google 2024 Environmental Report",
        "Google 2024",
        ("2024 Environmental Report", "google-env-2024"),
        "techreport",
        {
            "author": "{Google}",
            "title": "2024 Environmental Report",
            "institution": "Google LLC",
            "address": "Mountain View, CA, USA",
            "year": "2024",
            "url": "https://www.gstatic.com/gumdrop/sustainability/"
            "google-2024-environmental-report.pdf",
        },
    ),
    _web(
        "aws2024datacenters",
        "Amazon Web Services, sustainability in the cloud: data centres",
        "AWS 2024",
        ("AWS sustainability pages", "aws-sustainability"),
        author="{Amazon Web Services}",
        title="Sustainability in the Cloud: Data Centers",
        howpublished="Web page, global PUE 1.15 for 2023",
        year="2024",
        url="https://aws.amazon.com/sustainability/data-centers/",
    ),
    _web(
        "idc2024onpremise",
        "IDC estimate of on-premise enterprise PUE, as quoted by Amazon Web Services",
        "IDC via AWS 2024",
        ("IDC estimate of on-premise", "idc-via-aws"),
        author="{Amazon Web Services}",
        title="Sustainability in the Cloud: Data Centers",
        howpublished="Web page quoting IDC, on-premise enterprise PUE 1.63",
        year="2024",
        url="https://aws.amazon.com/sustainability/data-centers/",
    ),
    _web(
        "microsoft2024datacenters",
        "Microsoft datacenter efficiency statements",
        "Microsoft 2024",
        ("Microsoft datacenter efficiency", "microsoft-datacenters"),
        author="{Microsoft}",
        title="Microsoft Datacenters: Sustainability and Efficiency",
        howpublished="Web page, fleet PUE 1.18 for 2024",
        year="2024",
        url="https://datacenters.microsoft.com/",
    ),
    _web(
        "meta2023sustainability",
        "Meta sustainability report 2023",
        "Meta 2023",
        ("Meta sustainability report", "meta-sustainability-2023"),
        author="{Meta}",
        title="Sustainability Report",
        howpublished="Web page, data-centre PUE 1.08 for 2023",
        year="2023",
        url="https://sustainability.atmeta.com/",
    ),
    Reference(
        "uptime2024survey",
        "Uptime Institute Global Data Center Survey 2024",
        "Uptime Institute 2024",
        ("Global Data Center Survey 2024", "uptime-2024"),
        "techreport",
        {
            "author": "{Uptime Institute}",
            "title": "Global Data Center Survey 2024",
            "institution": "Uptime Institute",
            "address": "New York, NY, USA",
            "year": "2024",
            "url": "https://uptimeinstitute.com/resources/research-and-reports/"
            "uptime-institute-global-data-center-survey-results-2024",
        },
    ),
    Reference(
        "uptime2023survey",
        "Uptime Institute Global Data Center Survey 2023",
        "Uptime Institute 2023",
        ("Global Data Center Survey 2023", "uptime-2023"),
        "techreport",
        {
            "author": "{Uptime Institute}",
            "title": "Global Data Center Survey 2023",
            "institution": "Uptime Institute",
            "address": "New York, NY, USA",
            "year": "2023",
            "url": "https://uptimeinstitute.com/resources/research-and-reports/"
            "uptime-institute-global-data-center-survey-results-2023",
        },
    ),
    Reference(
        "lannelongue2021green",
        "Lannelongue et al. 2021, Green Algorithms: Quantifying the Carbon Footprint of "
        "Computation",
        "Lannelongue et al. 2021",
        ("cloudProviders_datacenters", "greenalgorithms-datacenters", "Green Algorithms"),
        "article",
        {
            "author": 'Lannelongue, Lo{\\"\\i}c and Grealey, Jason and Inouye, Michael',
            "title": "Green Algorithms: Quantifying the Carbon Footprint of Computation",
            "journal": "Advanced Science",
            "volume": "8",
            "number": "12",
            "pages": "2100707",
            "year": "2021",
            "doi": "10.1002/advs.202100707",
            "url": "https://doi.org/10.1002/advs.202100707",
        },
    ),
    # --- network energy ---------------------------------------------------------------------
    Reference(
        "aslan2018electricity",
        "Aslan et al. 2018, Electricity Intensity of Internet Data Transmission",
        "Aslan et al. 2018",
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
            "url": "https://doi.org/10.1111/jiec.12630",
        },
    ),
    Reference(
        "krug2014understanding",
        "Krug et al. 2014, Understanding the environmental costs of fixed line networking",
        "Krug et al. 2014",
        ("Krug", "krug-2014"),
        "inproceedings",
        {
            "author": "Krug, Louise and Shackleton, Mark and Saffre, Fabrice",
            "title": "Understanding the environmental costs of fixed line networking",
            "booktitle": "Proceedings of the 5th International Conference on Future Energy Systems",
            "series": "e-Energy '14",
            "year": "2014",
            **ACM,
            "doi": "10.1145/2602044.2602057",
            "url": "https://doi.org/10.1145/2602044.2602057",
        },
    ),
    Reference(
        "williams2013methodology",
        "Williams and Tang, energy of electronic software distributions",
        "Williams and Tang",
        ("Williams & Tang", "williams-tang-2013"),
        "article",
        {
            "author": "Williams, Daniel R. and Tang, Yinshan",
            "title": "Methodology to model the energy and greenhouse gas emissions of "
            "electronic software distributions",
            "journal": "Environmental Science \\& Technology",
            "year": "2013",
            "doi": "10.1021/es202125j",
            "url": "https://doi.org/10.1021/es202125j",
        },
    ),
    Reference(
        "carbontrust2021video",
        "Carbon Trust 2021, Carbon impact of video streaming",
        "Carbon Trust 2021",
        ("Carbon Trust", "carbon-trust-2021"),
        "techreport",
        {
            "author": "{Carbon Trust}",
            "title": "Carbon impact of video streaming",
            "institution": "Carbon Trust",
            "address": "London, UK",
            "year": "2021",
            "url": "https://www.carbontrust.com/our-work-and-impact/guides-reports-and-tools/"
            "carbon-impact-of-video-streaming",
        },
    ),
    _web(
        "ccf2023methodology",
        "Cloud Carbon Footprint methodology",
        "Cloud Carbon Footprint",
        ("Cloud Carbon Footprint", "ccf-datacenter"),
        author="{Cloud Carbon Footprint}",
        title="Cloud Carbon Footprint Methodology",
        howpublished="Web page",
        year="2023",
        url="https://www.cloudcarbonfootprint.org/docs/methodology",
    ),
    # --- embodied carbon --------------------------------------------------------------------
    Reference(
        "chien2023reducing",
        "Chien et al. 2023, Reducing the Carbon Impact of Generative AI Inference, today and "
        "in 2035",
        "Chien et al. 2023",
        ("Chien et al.",),
        "inproceedings",
        {
            "author": "Chien, Andrew A. and Lin, Liuzixuan and Nguyen, Hai and Rao, Varsha and "
            "Sharma, Tristan and Wijayawardana, Rajini",
            "title": "Reducing the Carbon Impact of Generative {AI} Inference (today and in 2035)",
            "booktitle": "Proceedings of the 2nd Workshop on Sustainable Computer Systems",
            "series": "HotCarbon '23",
            "pages": "11:1--11:7",
            "year": "2023",
            **ACM,
            "doi": "10.1145/3604930.3605705",
            "url": "https://doi.org/10.1145/3604930.3605705",
        },
    ),
    _web(
        "ecoinfo_ecodiag",
        "EcoInfo, CNRS: Ecodiag embodied footprint factors of computing equipment",
        "EcoInfo",
        ("EcoInfo",),
        author="{EcoInfo (CNRS)}",
        title="Ecodiag: estimating the embodied footprint of computing equipment",
        howpublished="Online calculator and data",
        year="2024",
        url="https://ecoinfo.cnrs.fr/ecodiag-calcul/",
    ),
    # --- equivalences -----------------------------------------------------------------------
    _web(
        "epa2018vehicle",
        "US EPA 2018, Greenhouse Gas Emissions from a Typical Passenger Vehicle",
        "US EPA 2018",
        ("Typical Passenger Vehicle", "8,887 gCO2 per US gallon"),
        author="{US Environmental Protection Agency}",
        title="Greenhouse Gas Emissions from a Typical Passenger Vehicle",
        howpublished="Fact sheet EPA-420-F-18-008",
        year="2018",
        url="https://www.epa.gov/greenvehicles/greenhouse-gas-emissions-typical-passenger-vehicle",
    ),
    _web(
        "eia2019residential",
        "US EIA, average annual electricity use of a US residential customer in 2019",
        "US EIA 2019",
        ("US EIA",),
        author="{US Energy Information Administration}",
        title="How much electricity does an {American} home use?",
        howpublished="Frequently asked questions, 2019 data",
        year="2019",
        url="https://www.eia.gov/tools/faqs/faq.php?id=97&t=3",
    ),
    # --- processors (declared work) ---------------------------------------------------------
    _web(
        "nvidia2020a100",
        "NVIDIA A100 Tensor Core GPU datasheet",
        "NVIDIA",
        ("nvidia-a100-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA A100} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2020",
        url="https://www.nvidia.com/en-us/data-center/a100/",
    ),
    _web(
        "nvidia2022h100",
        "NVIDIA H100 Tensor Core GPU datasheet",
        "NVIDIA",
        ("nvidia-h100-datasheet", "nvidia-h100-pcie-brief"),
        author="{NVIDIA}",
        title="{NVIDIA H100} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2022",
        url="https://www.nvidia.com/en-us/data-center/h100/",
    ),
    _web(
        "nvidia2017v100",
        "NVIDIA V100 Tensor Core GPU datasheet",
        "NVIDIA",
        ("nvidia-v100-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA V100} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2017",
        url="https://www.nvidia.com/en-us/data-center/v100/",
    ),
    _web(
        "nvidia2016p100",
        "NVIDIA Tesla P100 datasheet",
        "NVIDIA",
        ("nvidia-p100-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA Tesla P100} Datasheet",
        howpublished="Product datasheet",
        year="2016",
        url="https://www.nvidia.com/en-us/data-center/tesla-p100/",
    ),
    _web(
        "nvidia2018t4",
        "NVIDIA T4 datasheet",
        "NVIDIA",
        ("nvidia-t4-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA T4} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2018",
        url="https://www.nvidia.com/en-us/data-center/tesla-t4/",
    ),
    _web(
        "nvidia2023l4",
        "NVIDIA L4 datasheet",
        "NVIDIA",
        ("nvidia-l4-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA L4} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2023",
        url="https://www.nvidia.com/en-us/data-center/l4/",
    ),
    _web(
        "nvidia2021a10",
        "NVIDIA A10 datasheet",
        "NVIDIA",
        ("nvidia-a10-datasheet",),
        author="{NVIDIA}",
        title="{NVIDIA A10} Tensor Core {GPU} Datasheet",
        howpublished="Product datasheet",
        year="2021",
        url="https://www.nvidia.com/en-us/data-center/products/a10-gpu/",
    ),
    PATTERSON,
    DODGE,
)

_GRAPHER = re.compile(r"\s*\(grapher '[^']*'\)")
# a parenthesis naming data keys: "(nvidia-a100-datasheet)", "(... patterson-2021-table3)"
_DATA_KEY = re.compile(r"\s*\((?=[^()]*\b[a-z]+\d*-[a-z0-9-]*\d)[^()]*\)")


def reference(text: str | None) -> Reference | None:
    """The known work ``text`` (a source string or a data key) names, if any (the first of
    :data:`KNOWN` that matches).

    >>> reference("0.06 kWh/GB (Aslan, end-to-end)").key
    'aslan2018electricity'
    >>> reference("TDP of NVIDIA A100 SXM4 40GB (nvidia-a100-datasheet)").key
    'nvidia2020a100'
    """
    if not text:
        return None
    for ref in KNOWN:
        if any(m in text for m in ref.match):
            return ref
    return None


def references(text: str | None) -> list[Reference]:
    """Every known work ``text`` names (a processor's TDP from its datasheet and its measured
    average from Patterson et al.), in :data:`KNOWN`'s order."""
    if not text:
        return []
    return [ref for ref in KNOWN if any(m in text for m in ref.match)]


# source strings that carry a figure or a scope of their own ("0.06 kWh/GB (Aslan,
# end-to-end)", "measured average of ... (patterson-2021-table3)"): kept, data keys dropped
_KEEP = ("aslan", "krug", "williams", "carbontrust", "ccf", "nvidia", "patterson")


def readable(text: str | None) -> str:
    """A *source string* as a reader should see it: a known data source by its title (no
    parentheses, so it may stand inside them), anything else without data-file detail
    (grapher names, data keys). Never call it on a sentence: it would replace the sentence.

    >>> readable("Carbon intensity of electricity generation (grapher "
    ...          "'carbon-intensity-electricity'), based on Ember (Our World in Data)")[:40]
    'Our World in Data, Carbon intensity of e'
    >>> readable("given by the user")
    'given by the user'
    >>> readable("TDP of NVIDIA A100 SXM4 40GB (nvidia-a100-datasheet)")
    'TDP of NVIDIA A100 SXM4 40GB'
    >>> readable("measured average of NVIDIA V100 (nvidia-v100-datasheet; measured average: "
    ...          "patterson-2021-table3)"), readable("0.06 kWh/GB (Aslan, end-to-end)")
    ('measured average of NVIDIA V100', '0.06 kWh/GB (Aslan, end-to-end)')
    """
    if not text:
        return ""
    ref = reference(text)
    if ref is not None and not ref.key.startswith(_KEEP):
        return ref.title
    return _unnested(_DATA_KEY.sub("", _GRAPHER.sub("", text)).strip())


def _unnested(text: str) -> str:
    """``text`` with a parenthesis inside another one written as a clause, so that a source
    never nests parentheses ("end-to-end (access + core networks)" inside its author's).

    >>> _unnested("0.06 kWh/GB (Aslan, end-to-end (access + core networks))")
    '0.06 kWh/GB (Aslan, end-to-end, access + core networks)'
    """
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > 1:
                if out and out[-1] == " ":
                    out.pop()
                out.append(", ")
                continue
        elif ch == ")":
            depth -= 1
            if depth >= 1:
                continue
        out.append(ch)
    return "".join(out)


def short(text: str | None) -> str:
    """A source string's author for a sentence ("US EPA eGRID"); the readable
    text when the source is not a known work."""
    ref = reference(text)
    return ref.short if ref is not None else readable(text)


def cited(data: dict[str, Any]) -> list[Reference]:
    """Every work a report's text cites, in order of first use, then the two methodology
    papers (Patterson et al. 2021, Dodge et al. 2022)."""
    out: list[Reference] = []

    def add(text: str | None) -> None:
        for ref in references(text):
            if ref not in out:
                out.append(ref)

    for r in data["runs"]:
        if r.get("carbon"):
            add(r["carbon"].get("source"))
            if r["carbon"].get("series"):
                add(r["carbon"]["series"].get("source"))
            add(r["carbon"].get("pue_source"))
        if r.get("federated"):
            add(r["federated"].get("network"))
        if data.get("project"):  # a project states the equivalences of its total, once
            continue
        for e in r.get("equivalences") or []:
            if e.get("shown", True):
                add(e.get("source"))
    for e in (data.get("project") or {}).get("equivalences") or []:
        if e.get("shown", True):
            add(e.get("source"))
    for r in data["runs"]:
        if r.get("embodied"):
            add(r["embodied"].get("source"))
    for d in data.get("untracked") or []:
        add(d.get("carbon_source"))
        add(d.get("watts_source"))
        if d.get("embodied"):
            add(d["embodied"].get("source"))
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
