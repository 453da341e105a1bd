"""`method: tfidf`: word and character n-gram TF-IDF with a linear model; seconds per fold on CPU.

The spec only: the method's code (harness.methods.tfidf.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.tfidf.config import TfidfConfig

METHOD = MethodSpec(name="tfidf", method="harness.methods.tfidf.method:TfidfMethod",
                    help='n-gram TF-IDF + class-weighted linear model',
                    section="tfidf", config=TfidfConfig,
                    test_settings=())
