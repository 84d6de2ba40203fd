"""The benchmarks and CMMLU-Med's subjects: the names rows are tagged with, each defined once.

Datasets (sources.py) are question sets of these benchmarks; the lm-eval tasks
(sdoc_model.eval.tasks) score one dataset each.
"""

CMB, CMEXAM, CMMLU_MED = "cmb", "cmexam", "cmmlu_med"
BENCHMARK_LABELS = {CMB: "CMB", CMEXAM: "CMExam", CMMLU_MED: "CMMLU-Med"}

# CMMLU's medical subjects (the Baichuan2 / Apollo definition of CMMLU-Med), with the Chinese
# name that lm-eval's own cmmlu_<subject> task puts in its prompt.
CMMLU_MED_SUBJECTS = {
    "anatomy": "解剖学",
    "clinical_knowledge": "临床知识",
    "college_medicine": "大学医学",
    "genetics": "遗传学",
    "nutrition": "营养学",
    "traditional_chinese_medicine": "中医中药",
    "virology": "病毒学",
}
