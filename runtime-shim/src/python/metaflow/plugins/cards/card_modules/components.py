"""`metaflow.plugins.cards.card_modules.components`: the card components under the import
path Metaflow gives them; they are the ones of `metaflow.cards`."""

from ....cards import (  # noqa: F401
    Artifact,
    Error,
    Image,
    Markdown,
    MetaflowCardComponent,
    ProgressBar,
    Table,
    UserComponent,
    VegaChart,
)
