"""Fixed reference tables of the synthetic lending book (independent of the seed).

Real PRC administrative division codes for the cities, common surnames and given-name
characters, mobile prefixes, the category vocabularies of the lending system and the
phrase pools of customer-service notes. Keeping them constant means the seed changes
who the customers are, never what the vocabulary is.
"""

from __future__ import annotations

import numpy as np

# (province, city, relative weight, district codes used as the ID number's region code)
CITIES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("北京市", "北京市", 8.0, ("110101", "110105", "110108")),
    ("上海市", "上海市", 8.0, ("310101", "310115")),
    ("广东省", "广州市", 7.0, ("440106", "440104")),
    ("广东省", "深圳市", 7.0, ("440305", "440304")),
    ("广东省", "东莞市", 3.0, ("441900",)),
    ("浙江省", "杭州市", 5.0, ("330106", "330108")),
    ("浙江省", "宁波市", 2.5, ("330203",)),
    ("江苏省", "南京市", 4.0, ("320102", "320106")),
    ("江苏省", "苏州市", 4.0, ("320505", "320506")),
    ("四川省", "成都市", 6.0, ("510104", "510107")),
    ("四川省", "绵阳市", 1.5, ("510703",)),
    ("湖北省", "武汉市", 5.0, ("420102", "420106")),
    ("湖北省", "宜昌市", 1.5, ("420502",)),
    ("陕西省", "西安市", 4.0, ("610113", "610104")),
    ("陕西省", "宝鸡市", 1.0, ("610302",)),
    ("山东省", "济南市", 3.0, ("370102",)),
    ("山东省", "青岛市", 3.5, ("370202", "370212")),
    ("湖南省", "长沙市", 4.0, ("430102", "430104")),
    ("湖南省", "株洲市", 1.5, ("430202",)),
    ("重庆市", "重庆市", 5.0, ("500103", "500112")),
    ("河南省", "郑州市", 4.0, ("410105", "410102")),
    ("河南省", "洛阳市", 1.5, ("410305",)),
    ("福建省", "福州市", 2.5, ("350102",)),
    ("福建省", "厦门市", 2.5, ("350203",)),
    ("安徽省", "合肥市", 3.0, ("340104",)),
)
CITY_WEIGHTS = np.array([c[2] for c in CITIES]) / sum(c[2] for c in CITIES)
CITY_PROVINCE = [c[0] for c in CITIES]
CITY_NAME = [c[1] for c in CITIES]
CITY_CODES = [c[3] for c in CITIES]
TIER1_CITIES = [CITY_NAME.index(c) for c in ("北京市", "上海市", "广州市", "深圳市")]

# Surnames roughly in order of frequency, with weights falling off along the list.
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵"
)
SURNAME_WEIGHTS = 1.0 / (np.arange(len(SURNAMES)) + 4.0)
SURNAME_WEIGHTS = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()
GIVEN_MALE = list("伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳斌博文")
GIVEN_FEMALE = list("芳娜敏静丽艳娟霞婷雪琳晶燕玲丹萍红颖倩慧佳琪欣悦露瑶怡梅莉蕾")
GIVEN_NEUTRAL = list("子一思嘉雨晨心安可欣诗梓涵然睿晓春秋")

MOBILE_PREFIXES = [
    *(str(p) for p in range(130, 140)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("170", "176", "177", "178"),
    *(str(p) for p in range(180, 190)),
    *("191", "198", "199"),
]

EDUCATION = ("high_school", "college", "bachelor", "master")
EMPLOYMENT = ("salaried", "self_employed", "freelancer", "student", "unemployed")
PURPOSES = (
    "consumption",
    "education",
    "medical",
    "travel",
    "home_improvement",
    "business",
    "debt_consolidation",
)
CHANNELS = ("app", "web", "partner_a", "partner_b", "offline")
TERMS = np.array([3, 6, 12, 24])
EVENT_TYPES = ("login", "page_view", "loan_calc", "apply_click", "contact_upload", "repay_view")
ACCOUNT_TYPES = ("credit_card", "consumer_loan", "mortgage", "auto_loan")
ALERT_CODES = ("MULTI_LENDER", "ADDRESS_CHANGE", "COURT_RECORD", "ID_THEFT_WATCH", "PHONE_CHANGE")

_COMPANY_BRANDS = (
    "华信",
    "中科",
    "鼎盛",
    "恒通",
    "金石",
    "天宇",
    "新锐",
    "博源",
    "华晨",
    "瑞达",
    "安泰",
    "宏图",
    "远航",
    "星辰",
    "云帆",
    "盛世",
    "东方",
    "聚力",
    "卓越",
    "合众",
    "腾跃",
    "嘉禾",
    "锦程",
    "鸿运",
    "海川",
    "明德",
    "华腾",
    "众诚",
    "德润",
    "汇通",
    "九州",
    "长青",
    "奥凯",
    "振华",
    "启明",
    "联创",
    "信达",
    "康宁",
    "伟业",
    "丰源",
)
_COMPANY_INDUSTRIES = (
    "科技",
    "贸易",
    "物流",
    "电子",
    "建设工程",
    "餐饮管理",
    "信息技术",
    "教育咨询",
    "医药",
    "机械制造",
    "服装",
    "房地产经纪",
    "人力资源",
    "文化传媒",
    "食品",
    "汽车销售",
)
COMPANIES_PER_CITY = 8
# Employer names: COMPANIES_PER_CITY per city, index = city * COMPANIES_PER_CITY + j.
COMPANIES = [
    CITY_NAME[c]
    + _COMPANY_BRANDS[(i * 7) % len(_COMPANY_BRANDS)]
    + _COMPANY_INDUSTRIES[(i * 5 + c) % len(_COMPANY_INDUSTRIES)]
    + "有限公司"
    for c in range(len(CITIES))
    for i in range(c * COMPANIES_PER_CITY, (c + 1) * COMPANIES_PER_CITY)
]
SHOP_TYPES = (
    "餐饮店",
    "便利店",
    "服装店",
    "五金商行",
    "建材经营部",
    "汽修厂",
    "水果店",
    "美容工作室",
)

# Customer-service note phrases: (Chinese, English) pairs joined with a space.
NOTE_NEUTRAL = (
    "客户来电咨询额度，表示近期有装修需求。 Customer asked about the available credit limit.",
    "客户反馈App登录失败，已指导重置密码。 Helped the customer reset the app login password.",
    "客户申请变更居住地址，已核实身份。 Address change request, identity verified.",
    "客户询问提前还款是否收取手续费。 Asked whether early repayment has a fee.",
    "客户确认本期还款日，无异常。 Confirmed the due date, no issue.",
    "Customer updated the bank card for auto-debit. 已更换自动扣款银行卡。",
    "客户咨询额度提升流程，已告知需补充收入证明。 Limit increase needs proof of income.",
    "客户询问App新版本功能。 Customer asked about the new app version.",
    "客户要求开具结清证明，已发送邮件。 Settlement certificate sent by email.",
    "客户咨询利率计算方式，已解释。 Explained how interest is calculated.",
)
NOTE_RISKY = (
    "客户来电询问延期还款，表示工资延迟发放。 Customer asked to extend the due date.",
    "客户称近期失业，收入不稳定。 Customer said he is unemployed, income unstable.",
    "客户投诉其他平台催收电话骚扰。 Complaint about collection calls from another lender.",
    "客户询问多笔借款合并，负债较高。 High debt, asked about debt consolidation.",
    "Customer mentioned a lawsuit with a former employer. 客户提及与前雇主的起诉纠纷。",
    "客户多次询问最高可借额度，情绪急躁。 Repeatedly asked for the maximum amount.",
    "客户表示在多个平台有借款，资金周转困难。 Borrowing on several platforms, cash-flow problems.",
)
NOTE_ARREARS = (
    "客户逾期未还，已电话催收，承诺下周还款。 Overdue; collection call made, will pay next week.",
    "催收外呼无人接听，已发送短信提醒。 Collection call unanswered, SMS reminder sent.",
    "客户表示无力还款，考虑申请破产。 Customer unable to pay, considering bankruptcy.",
    "疑似欺诈，紧急联系人均称不认识借款人。 Possible fraud: contacts do not know the borrower.",
    "已发送律师函，准备起诉。 Legal notice sent, preparing a lawsuit.",
    "客户投诉催收频繁，已记录。 Customer complaint: too many collection calls.",
    "客户称已失业，请求减免罚息。 Customer unemployed, asked to waive the penalty interest.",
    "逾期60天以上，转交外部催收机构。 Overdue more than 60 days, passed to external collection.",
)
NOTE_CHANNELS = ("phone", "chat", "email", "app")
