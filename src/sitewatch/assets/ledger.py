"""The ledger (台账) format: sheets and columns of the Excel/CSV files property managers keep.

The simulator writes ledgers in this format and the asset registry imports them. Every column has
a Chinese and an English header; importers accept either (and the column key itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class ColumnType(StrEnum):
    """Type of a ledger cell."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    DATE = "date"  # ISO yyyy-mm-dd or an Excel date cell
    BOOL = "bool"  # 是/否, yes/no, true/false, 1/0


class ManagementMode(StrEnum):
    """Long-term management arrangement of a compound (长效管理模式)."""

    PROPERTY_COMPANY = "property_company"  # 专业物业公司
    SERVICE_CENTRE = "service_centre"  # 社区物业服务中心
    SELF_GOVERNANCE = "self_governance"  # 居民自治


MANAGEMENT_MODE_ZH: Mapping[ManagementMode, str] = MappingProxyType(
    {
        ManagementMode.PROPERTY_COMPANY: "物业公司",
        ManagementMode.SERVICE_CENTRE: "社区物业服务中心",
        ManagementMode.SELF_GOVERNANCE: "居民自治",
    }
)


class OrgType(StrEnum):
    """Kinds of organisation in the registry."""

    PROPERTY_COMPANY = "property_company"  # 物业公司
    CONTRACTOR = "contractor"  # 维保单位
    UTILITY = "utility"  # 公用事业单位 (water company, power company)
    BUREAU = "bureau"  # 住建局 / 街道
    COMMUNITY = "community"  # 社区居委会 / 物业服务中心


@dataclass(frozen=True, slots=True)
class Column:
    """One ledger column."""

    key: str
    zh: str
    en: str
    type: ColumnType = ColumnType.TEXT
    required: bool = False


@dataclass(frozen=True, slots=True)
class Sheet:
    """One ledger sheet: its names and columns; ``key`` lists the natural-key columns."""

    name: str
    zh: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    def column(self, key: str) -> Column:
        """The column with this key."""
        return next(c for c in self.columns if c.key == key)


_T, _I, _F, _D, _B = ColumnType.TEXT, ColumnType.INT, ColumnType.FLOAT, ColumnType.DATE, ColumnType.BOOL


def _c(key: str, zh: str, en: str, type_: ColumnType = _T, required: bool = False) -> Column:
    return Column(key, zh, en, type_, required)


COMPOUNDS = Sheet(
    "compounds",
    "小区",
    (
        _c("code", "小区编码", "Compound code", required=True),
        _c("name_zh", "小区名称", "Name (zh)", required=True),
        _c("name_en", "英文名称", "Name (en)"),
        _c("city", "市", "City", required=True),
        _c("district", "区县", "District", required=True),
        _c("district_code", "区划代码", "District code"),
        _c("street", "街道", "Street", required=True),
        _c("community", "社区", "Community", required=True),
        _c("address", "地址", "Address"),
        _c("longitude", "经度", "Longitude", _F),
        _c("latitude", "纬度", "Latitude", _F),
        _c("year_built", "建成年份", "Year built", _I, True),
        _c("buildings", "楼栋数", "Buildings", _I, True),
        _c("households", "户数", "Households", _I, True),
        _c("floor_area_m2", "建筑面积(平方米)", "Floor area (m²)", _F),
        _c("renovation_year", "改造年份", "Renovation year", _I),
        _c("renovation_batch", "改造批次", "Renovation batch"),
        _c("renovation_content", "改造内容", "Renovation content"),
        _c("management_mode", "管理模式", "Management mode", required=True),
        _c("manager_org", "管理单位", "Managing organisation"),
    ),
    ("code",),
)

BUILDINGS = Sheet(
    "buildings",
    "楼栋",
    (
        _c("compound_code", "小区编码", "Compound code", required=True),
        _c("building_no", "楼栋号", "Building no.", required=True),
        _c("floors", "层数", "Floors", _I, True),
        _c("units", "单元数", "Units", _I, True),
        _c("households", "户数", "Households", _I, True),
        _c("year_built", "建成年份", "Year built", _I),
    ),
    ("compound_code", "building_no"),
)

ASSETS = Sheet(
    "assets",
    "设备",
    (
        _c("asset_code", "资产编码", "Asset code", required=True),
        _c("compound_code", "小区编码", "Compound code", required=True),
        _c("building_no", "楼栋号", "Building no."),  # blank: compound-wide (gates, roads, parking)
        _c("unit_no", "单元号", "Unit no."),
        _c("kind", "设备类型", "Kind", required=True),  # a DeviceKind value or its Chinese label
        _c("device_id", "设备编号", "Device id"),  # id the device reports under (contract device id)
        _c("name", "设备名称", "Name"),
        _c("location", "安装位置", "Location"),
        _c("manufacturer", "生产厂家", "Manufacturer"),
        _c("model", "型号", "Model"),
        _c("serial_no", "出厂编号", "Serial no."),
        _c("install_date", "安装日期", "Install date", _D),
        _c("warranty_end", "质保到期", "Warranty end", _D),
        _c("owner_org", "产权单位", "Owner"),
        _c("maintainer_org", "维保单位", "Maintainer"),
        _c("funding_source", "资金来源", "Funding source"),
        # kind-specific
        _c("rated_load_kg", "额定载重(kg)", "Rated load (kg)", _I),
        _c("floors_served", "服务层数", "Floors served", _I),
        _c("registration_code", "使用登记证号", "Registration code"),
        _c("charger_power_kw", "额定功率(kW)", "Charger power (kW)", _F),
        _c("connector_type", "接口类型", "Connector type"),
        _c("ocpp_id", "OCPP编号", "OCPP id"),
        _c("police_linked", "接入公安网", "Police network linked", _B),
        _c("lamp_type", "灯具类型", "Lamp type"),
        _c("wattage_w", "灯具功率(W)", "Lamp wattage (W)", _F),
        _c("meter_scope", "水表类别", "Meter scope"),  # household | building
        _c("meter_size_mm", "口径(mm)", "Meter size (mm)", _I),
        _c("household", "户号", "Household"),
    ),
    ("asset_code",),
)

ORGANISATIONS = Sheet(
    "organisations",
    "单位",
    (
        _c("name", "单位名称", "Name", required=True),
        _c("type", "单位类型", "Type", required=True),  # an OrgType value or its Chinese label
        _c("contact", "联系人", "Contact"),
        _c("phone", "联系电话", "Phone"),
    ),
    ("name",),
)

CREWS = Sheet(
    "crews",
    "班组",
    (
        _c("crew_code", "班组编码", "Crew code", required=True),
        _c("org", "所属单位", "Organisation", required=True),
        _c("name", "班组名称", "Name", required=True),
        _c("leader", "负责人", "Leader"),
        _c("phone", "联系电话", "Phone"),
        _c("wecom_id", "企业微信", "WeCom id"),
        _c("dingtalk_id", "钉钉", "DingTalk id"),
        _c("members", "成员", "Members"),  # "姓名:电话; 姓名:电话"
    ),
    ("crew_code",),
)

CONTRACTS = Sheet(
    "contracts",
    "维保合同",
    (
        _c("contract_no", "合同编号", "Contract no.", required=True),
        _c("org", "维保单位", "Maintainer", required=True),
        _c("compound_code", "小区编码", "Compound code", required=True),
        _c("kinds", "设备类型", "Kinds", required=True),  # comma-separated DeviceKind values/labels
        _c("crew_code", "班组编码", "Crew code"),
        _c("start_date", "开始日期", "Start date", _D, True),
        _c("end_date", "结束日期", "End date", _D),
        _c("response_minutes", "响应时限(分钟)", "Response (min)", _I),
        _c("arrival_minutes", "到场时限(分钟)", "Arrival (min)", _I),
    ),
    ("contract_no",),
)

SHEETS: Mapping[str, Sheet] = MappingProxyType(
    {s.name: s for s in (ORGANISATIONS, COMPOUNDS, BUILDINGS, ASSETS, CREWS, CONTRACTS)}
)  # in import order: later sheets refer to earlier ones

KIND_LABELS_ZH: Mapping[str, str] = MappingProxyType(
    {
        "elevator": "电梯",
        "camera": "摄像头",
        "charger": "充电桩",
        "streetlight": "路灯",
        "water_meter": "水表",
        "gateway": "网关",
    }
)


def header_map(sheet: Sheet) -> dict[str, str]:
    """Map every accepted header (key, Chinese, English; case- and space-insensitive) to its column key."""
    out: dict[str, str] = {}
    for col in sheet.columns:
        for name in (col.key, col.zh, col.en):
            out[_norm(name)] = col.key
    return out


def _norm(header: str) -> str:
    return "".join(str(header).split()).lower()


def normalise_header(header: object) -> str:
    """Normalise a header cell the way :func:`header_map` keys are normalised."""
    return _norm(str(header))
