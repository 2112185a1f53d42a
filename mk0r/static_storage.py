"""Static files in production: collected at image build, served by WhiteNoise."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names (cached forever by browsers) and precompressed copies. The picker's ES
    modules import each other (`import … from "./api.js";`): those imports are rewritten to the
    hashed names too, so a page always runs the modules of one build."""

    support_js_module_import_aggregation = True
