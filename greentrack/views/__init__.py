"""Views of the account: the run summary (text, JSON, Markdown). Views read figures from
:mod:`greentrack.account`; they format, they never compute."""
