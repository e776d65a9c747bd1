"""Fixed vocabulary of the generated public web: courts, regulators, lenders, news outlets.

Kept apart from the generator's ``reference`` module because it describes the outside
world (who publishes what), not the lending book; constant across seeds, like
``reference``, so the seed changes who appears on the site, never how the site talks.
"""

from __future__ import annotations

# District code (the first six digits of an ID number) -> district name, for the
# district codes ``reference.CITIES`` uses; the court of a district is named after it.
DISTRICTS: dict[str, str] = {
    "110101": "东城区",
    "110105": "朝阳区",
    "110108": "海淀区",
    "310101": "黄浦区",
    "310115": "浦东新区",
    "440106": "天河区",
    "440104": "越秀区",
    "440305": "南山区",
    "440304": "福田区",
    "441900": "第一",
    "330106": "西湖区",
    "330108": "滨江区",
    "330203": "海曙区",
    "320102": "玄武区",
    "320106": "鼓楼区",
    "320505": "虎丘区",
    "320506": "吴中区",
    "510104": "锦江区",
    "510107": "武侯区",
    "510703": "涪城区",
    "420102": "江岸区",
    "420106": "武昌区",
    "420502": "西陵区",
    "610113": "雁塔区",
    "610104": "莲湖区",
    "610302": "渭滨区",
    "370102": "历下区",
    "370202": "市南区",
    "370212": "崂山区",
    "430102": "芙蓉区",
    "430104": "岳麓区",
    "430202": "荷塘区",
    "500103": "渝中区",
    "500112": "渝北区",
    "410105": "金水区",
    "410102": "中原区",
    "410305": "涧西区",
    "350102": "鼓楼区",
    "350203": "思明区",
    "340104": "蜀山区",
}

# Province -> (one-character abbreviation used in case and decision numbers, pinyin name).
PROVINCES: dict[str, tuple[str, str]] = {
    "北京市": ("京", "Beijing"),
    "上海市": ("沪", "Shanghai"),
    "广东省": ("粤", "Guangdong"),
    "浙江省": ("浙", "Zhejiang"),
    "江苏省": ("苏", "Jiangsu"),
    "四川省": ("川", "Sichuan"),
    "湖北省": ("鄂", "Hubei"),
    "陕西省": ("陕", "Shaanxi"),
    "山东省": ("鲁", "Shandong"),
    "湖南省": ("湘", "Hunan"),
    "重庆市": ("渝", "Chongqing"),
    "河南省": ("豫", "Henan"),
    "福建省": ("闽", "Fujian"),
    "安徽省": ("皖", "Anhui"),
}

COURT_STATUSES = ("执行中", "已结案", "终结本次执行")
LIST_TYPES = ("被执行人", "失信被执行人")
CASE_CAUSES = (
    "借款合同纠纷",
    "金融借款合同纠纷",
    "信用卡纠纷",
    "民间借贷纠纷",
    "买卖合同纠纷",
    "租赁合同纠纷",
    "劳动争议",
    "服务合同纠纷",
)
COMPANY_CAUSES = (
    "买卖合同纠纷",
    "建设工程施工合同纠纷",
    "劳动争议",
    "借款合同纠纷",
    "租赁合同纠纷",
)
DISHONEST_CONDUCT = (
    "有履行能力而拒不履行生效法律文书确定义务",
    "违反财产报告制度",
    "违反限制消费令",
    "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
)

# Lenders and other regulated institutions (fictitious brands + real institution types).
LENDER_BRANDS = (
    "汇融",
    "安信",
    "中银通",
    "易贷",
    "金桥",
    "融e",
    "信和",
    "小鹿",
    "快易",
    "华夏众惠",
    "长安信诚",
    "天府",
    "海纳",
    "民泰",
    "瑞丰",
    "锦城",
)
LENDER_TYPES = (
    "消费金融有限公司",
    "小额贷款有限公司",
    "网络小额贷款有限公司",
    "融资担保有限公司",
    "农村商业银行股份有限公司",
    "村镇银行股份有限公司",
)
BANK_BRANCH_TYPES = ("银行股份有限公司{city}分行", "银行股份有限公司{city}{district}支行")
PERSON_POSITIONS = ("行长", "副行长", "信贷部经理", "风险管理部总经理", "总经理", "客户经理")

# Violations: (Chinese fact, English fact).
VIOLATIONS = (
    ("贷款“三查”不到位，贷款资金被挪用", "failed to conduct due diligence on loans"),
    ("违规向不符合条件的借款人发放贷款", "granted loans to unqualified borrowers"),
    ("委托第三方机构暴力催收", "used abusive third-party debt collection"),
    ("贷款综合年化利率披露不真实", "misrepresented the annualized cost of loans"),
    ("未按规定报送监管数据", "failed to report regulatory data as required"),
    ("违规收取贷款服务费用", "charged unauthorized loan service fees"),
    ("个人信息保护管理不到位，客户信息泄露", "failed to protect customer personal information"),
    ("互联网贷款风险管理不审慎", "managed internet lending risk imprudently"),
    ("与不具备资质的助贷机构开展合作", "cooperated with unlicensed loan facilitators"),
    ("信贷资产风险分类不准确", "misclassified credit asset risk"),
)
LEGAL_BASES = (
    "《中华人民共和国银行业监督管理法》第二十一条、第四十六条",
    "《中华人民共和国银行业监督管理法》第四十六条、第四十八条",
    "《消费金融公司管理办法》第三十二条及相关审慎经营规则",
    "《商业银行互联网贷款管理暂行办法》第五十四条",
    "《中华人民共和国个人信息保护法》第六十六条",
)

NEWS_SOURCES_ZH = ("财经日报", "金融观察报", "经济参考日报", "南方财讯", "华东商报", "新金融周刊")
NEWS_SOURCES_EN = ("Finance Daily", "Asia Credit Wire", "China Lending Review", "Market Ledger")
AUTHORS_EN = ("Li Wei", "Chen Jing", "Wang Lei", "Zhang Min", "Liu Yang", "Anna Zhou")
COMMENT_USERS = (
    "财经小白",
    "老王看市",
    "路人甲",
    "金融民工",
    "一只鲸鱼",
    "风控老兵",
    "晨曦",
    "momo",
)
COMMENTS = (
    "现在借钱太容易了，还钱就难了。",
    "监管早就该管管了。",
    "有没有人知道这家公司现在怎么样了？",
    "支持依法惩处老赖！",
    "标题党，内容没什么新东西。",
    "我朋友就在这家公司上班，工资已经拖了两个月。",
    "利率这么高谁借得起。",
    "Good reporting, thanks.",
)
INDUSTRY_HEADLINES = (
    ("消费金融行业一季度不良率小幅上升", "消费金融", "Consumer finance bad-loan ratio edges up"),
    ("监管发文规范互联网贷款助贷业务", "助贷", "Regulator tightens rules on loan facilitators"),
    ("多家银行下调个人消费贷款利率", "消费贷", "Banks cut rates on personal consumer loans"),
    (
        "个人信息保护执法趋严 金融机构整改提速",
        "个人信息",
        "Privacy enforcement on lenders steps up",
    ),
    ("小额贷款公司数量持续减少", "小贷", "Number of microlenders keeps shrinking"),
)
